"""Ingestion benchmark: the real service and Postgres, driven over HTTP by wrk.

Runs ``hookledger serve`` twice on fresh scratch databases, once with group
commit and once with one commit per request, replays unique signed webhooks
over keep-alive connections, and prints durable events/s, latency and memory
side by side (with ``--compare``, the same for another code tree, alternately).
See benchmarks/README.md.

``cli`` reads the options and orders the runs; ``requests`` signs the
deliveries, ``server`` starts the service of a code tree (``trees``), ``load``
drives wrk, ``measure`` takes CPU, memory, metrics and logs, ``run`` is one
run of all of these, ``report`` prints them.
"""
