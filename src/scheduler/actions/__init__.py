"""Outbound actions: a durable queue, senders for SendGrid and Authorize.net,
safe mode, retries with backoff and a dead-letter list."""
