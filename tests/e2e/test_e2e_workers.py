"""Several server processes behind one port: `serve --workers 2`."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServerProcess, post_purchase_headers

DELIVERIES = 40


@pytest.fixture
def two_workers(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, args=["--workers", "2"]).start()
    yield process
    process.stop()


def test_metrics_of_any_worker_count_every_workers_deliveries(two_workers: ServerProcess) -> None:
    # A new connection each time, so that both workers take some.
    for n in range(DELIVERIES):
        body = json.dumps({"event": "order.created", "orderId": f"w-{n}"}).encode()
        answer = httpx.post(
            two_workers.url + "/api/v1/post-purchase/webhook",
            content=body,
            headers=post_purchase_headers(body, msg_id=f"msg_{uuid.uuid4().hex}"),
        )
        assert answer.status_code == 200
    for _ in range(6):  # whichever worker answers the scrape
        text = httpx.get(two_workers.url + "/metrics").text
        found = re.search(
            r'hookledger_webhooks_total\{outcome="recorded",provider="post-purchase"\} (\S+)',
            text,
        )
        assert found is not None, text
        assert float(found.group(1)) == DELIVERIES
