"""The web console: server-rendered pages for the on-call operator and the
auditor (sign-in, overview, orders, an order's timeline)."""
