"""serve's background process: started again whenever it ends, and reported
down (to /health and /__selftest) when it keeps dying."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from hookledger.background_process import BackgroundProcess, jobs_down
from hookledger.selftest import background_check
from hookledger.supervisor import JobState


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("never held")


def test_a_background_process_that_keeps_dying_is_reported_down(tmp_path: Path) -> None:
    status = tmp_path / "background.json"
    process = BackgroundProcess([sys.executable, "-c", "raise SystemExit(3)"], {}, status,
                                restart_base=0.01)  # fmt: skip
    process.start()
    try:
        wait_until(lambda: process.status.deaths_in_row >= 3)
    finally:
        process.stop(timeout=5)
    assert jobs_down(status) == {"background": process.status.last_error}
    assert "exited with status 3" in process.status.last_error
    check = background_check(process.status, time.time())
    assert check.status == "error" and "3 deaths in a row" in check.reason


def test_a_background_process_that_lives_is_ok_and_stops_when_asked(tmp_path: Path) -> None:
    status = tmp_path / "background.json"
    process = BackgroundProcess([sys.executable, "-c", "import time; time.sleep(60)"], {},
                                status)  # fmt: skip
    process.start()
    try:
        wait_until(lambda: process.status.running)
        assert jobs_down(status) == {}
        assert background_check(process.status, time.time()).status == "ok"
    finally:
        started = time.monotonic()
        process.stop(timeout=5)
    assert time.monotonic() - started < 5  # SIGTERM ended it; no restart after a stop
    assert not process.status.running and process.status.restarts == 0


def test_one_that_ran_long_enough_before_dying_is_restarting_not_down() -> None:
    now = time.time()
    died_once = JobState("background", pid=1, running=False, deaths_in_row=1, last_error="exited")
    assert background_check(died_once, now).status == "degraded"
    back = JobState("background", pid=2, running=True, started_at=now - 31, deaths_in_row=5)
    assert not back.down(now) and background_check(back, now).status == "ok"
    assert background_check(None, now).status == "degraded"
