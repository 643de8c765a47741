"""`serve`'s background work in a process of its own: `hookledger worker`,
started by `serve` and started again after a backoff whenever it ends. Its
state is kept in a small file that every intake process reads, so that
`/health` and `/__selftest` say when the background work keeps dying instead of
hiding it behind live intake processes."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from events.retry import Backoff
from hookledger.supervisor import RESTART_CAP_SECONDS, JobState

log = logging.getLogger(__name__)

# Where `serve` tells its intake processes the background process's state is
# kept (not a setting: serve sets it for its children).
STATUS_ENV = "HOOKLEDGER_BACKGROUND_STATUS"
# How long a stopping background process has to finish its batch.
STOP_SECONDS = 30.0


def read_status(path: Path) -> JobState | None:
    """The state `serve` last wrote; None before its first write."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=JobState)
    except FileNotFoundError:
        return None


def jobs_down(path: Path) -> dict[str, str]:
    """For `/health`: the background process if it is down, with its last error."""
    status = read_status(path)
    if status is None or not status.down(time.time()):
        return {}
    return {"background": status.last_error}


class BackgroundProcess:
    """Runs ``command`` until stopped, starting it again each time it ends."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        status_path: Path,
        *,
        restart_base: float = 1.0,
    ) -> None:
        self._command = list(command)
        self._env = dict(env)
        self._status_path = status_path
        self._restart_base = restart_base
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-process", daemon=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # Written by this thread only, whole, to the file the intake processes read.
        self.status = JobState("background")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM the process (it drains), SIGKILL it if it does not end in time."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("background process did not stop in time: killed",
                          extra={"pid": proc.pid, "seconds": timeout})  # fmt: skip
                proc.kill()
                proc.wait()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = Backoff("background process", self._restart_base, RESTART_CAP_SECONDS)
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                # Its own session: a Ctrl-C at the terminal reaches serve, which stops it.
                proc = self._proc = subprocess.Popen(
                    self._command, env=self._env, start_new_session=True
                )
            state = self.status
            state.pid, state.running, state.started_at = proc.pid, True, time.time()
            self._write()
            code = proc.wait()
            if self._stopping.is_set():
                state.running = False
                self._write()
                return
            lived = time.time() - state.started_at
            if state.died(time.time(), f"exited with status {code} after {lived:.0f} s"):
                backoff.reset()
            state.restarts += 1
            self._write()
            delay = backoff.next()
            log.error("background process ended: starting it again",
                      extra={"pid": proc.pid, "status": code, "restart_in_seconds": delay,
                             "deaths_in_row": state.deaths_in_row})  # fmt: skip
            self._stopping.wait(delay)

    def _write(self) -> None:
        # Written whole then renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=self._status_path.parent, prefix=".status-")
        with os.fdopen(fd, "wb") as out:
            out.write(msgspec.json.encode(self.status))
        os.replace(temporary, self._status_path)
