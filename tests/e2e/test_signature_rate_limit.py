"""Bad signatures from one address are refused with 429 and Retry-After once
over the limit; a correctly signed delivery from the same address still lands."""

from __future__ import annotations

import json

import httpx

from tests.e2e_helpers import order_body, send_post_purchase
from tests.support import ServerProcess

PATH = "/api/v1/post-purchase/webhook"


def test_bad_signatures_over_the_limit_get_429_and_signed_deliveries_still_land(
    database_url: str,
) -> None:
    env = {"HOOKLEDGER_SIGNATURE_FAILURES_PER_MINUTE": "3", "HOOKLEDGER_TRUSTED_PROXIES": "1"}
    server = ServerProcess(database_url, env=env).start()
    try:
        body = json.dumps(order_body("rl-1")).encode()
        forged = {"content-type": "application/json", "webhook-id": "msg_x",
                  "webhook-timestamp": "1", "webhook-signature": "v1,AAAA",
                  "x-forwarded-for": "203.0.113.7"}  # fmt: skip
        statuses = [httpx.post(server.url + PATH, content=body, headers=forged, timeout=10)
                    for _ in range(5)]  # fmt: skip
        assert [a.status_code for a in statuses] == [401, 401, 401, 429, 429]
        assert statuses[-1].json()["error"] == "rate_limited"
        assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60
        # Another address behind the same proxy is not limited by the first.
        other = {**forged, "x-forwarded-for": "198.51.100.2"}
        assert httpx.post(server.url + PATH, content=body, headers=other).status_code == 401
        # A signed delivery from the limited address is accepted.
        signed = send_post_purchase(server.url, order_body("rl-1"),
                                    headers={"x-forwarded-for": "203.0.113.7"})  # fmt: skip
        assert signed.status_code == 200
    finally:
        server.stop()
