"""/health is not ready while a background job of the process is down."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.metrics import Metrics
from api.services import Services
from events.appender import Appender
from events.connector import Database


def _services(db: Database, down: dict[str, str]) -> Services:
    # The app opens the pool in its own loop, as a server does at start.
    return Services(
        db=db,
        appender=Appender(db),
        providers={},
        metrics=Metrics(),
        version="test",
        safe_mode=True,
        max_body_bytes=1024,
        jobs_down=lambda: down,
        on_startup=[db.open],
        on_shutdown=[db.close],
    )


async def test_health_answers_503_naming_a_job_that_stays_down(database_url: str) -> None:
    down = {"timers": "RuntimeError: a bug"}
    app = create_app(_services(Database(database_url), down))
    async with AsyncTestClient(app) as client:
        answer = await client.get("/health")
        assert answer.status_code == 503
        assert answer.json() == {"status": "unavailable", "detail": "background job down: timers"}
        assert "Retry-After" in answer.headers
        down.clear()
        assert (await client.get("/health")).status_code == 200
