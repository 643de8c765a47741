"""gcloud-tasks-emulator for the tests: its own venv (made once under a cache
directory, from requirements-cloudtasks.txt), started on a free port bound to
127.0.0.1 and stopped by its PID."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import free_port

HERE = Path(__file__).parent
REQUIREMENTS = HERE / "requirements-cloudtasks.txt"
LAUNCHER = HERE / "launch_cloudtasks.py"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hookledger-tests"


def emulator_python() -> Path:
    """The emulator venv's python, made on first use (a lock keeps two test
    sessions from making it at once)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"cloudtasks-emulator-{digest}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
                check=True,
            )
            (venv / "ready").touch()
    return python


class CloudTasksEmulator:
    """One emulator process; ``endpoint`` is its ``host:port``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.gettempdir()) / f"hookledger-cloudtasks-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> CloudTasksEmulator:
        python = emulator_python()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(python), str(LAUNCHER), str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited: {self.output()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"emulator did not listen: {self.output()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
