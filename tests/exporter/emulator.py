"""bqemulator for the tests: installed from PyPI into a venv of its own (it pins
protobuf versions the project cannot share), once per requirements file, under
~/.cache/hookledger/emulators (or $HOOKLEDGER_EMULATOR_CACHE); started on free
ports bound to 127.0.0.1, persistent so a stop and start keeps its tables, and
stopped by its PID."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import ROOT, free_port

REQUIREMENTS = ROOT / "tests" / "emulators" / "bqemulator.txt"
PROJECT = "test-proj"
INSTALL_TIMEOUT = 900.0


def cache_root() -> Path:
    configured = os.environ.get("HOOKLEDGER_EMULATOR_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hookledger" / "emulators"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two test runs installing at once: the second waits for the first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def emulator_venv() -> tuple[Path, dict[str, str]]:
    """The venv (made on first use) and what it found out about its DuckDB."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = cache_root() / f"bqemulator-{key}"
    marker = venv / "hookledger-ready.json"
    with _locked(cache_root() / f"bqemulator-{key}.lock"):
        if not marker.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            python = str(venv / "bin" / "python")
            install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*install, "-r", str(REQUIREMENTS)], check=True, timeout=INSTALL_TIMEOUT)
            probe = (
                "import duckdb, json; print(json.dumps({'version': duckdb.__version__, "
                "'platform': duckdb.execute('PRAGMA platform').fetchone()[0]}))"
            )
            found = json.loads(subprocess.check_output([python, "-c", probe], text=True))
            marker.write_text(json.dumps(found))
    facts: dict[str, str] = json.loads(marker.read_text())
    return venv, facts


class BigQueryEmulator:
    """One emulator process; ``stop`` and ``start`` again keep its data and port."""

    def __init__(self, workdir: Path) -> None:
        self.venv, facts = emulator_venv()
        self.workdir = workdir
        self.port = free_port()
        self.grpc_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.project = PROJECT
        self.log_path = workdir / "bqemulator.log"
        self.home = workdir / "home"
        self._install_spatial_extension(facts)
        self.proc: subprocess.Popen[bytes] | None = None

    def _install_spatial_extension(self, facts: dict[str, str]) -> None:
        # Offline, DuckDB cannot download its spatial extension: it comes from a
        # package, copied where DuckDB looks for it under the emulator's HOME.
        version = "v" + facts["version"].lstrip("v")
        packaged = next(self.venv.glob(
            f"lib/python*/site-packages/duckdb_extension_spatial/extensions/{version}/"
            "spatial.duckdb_extension"
        ))  # fmt: skip
        target = self.home / ".duckdb" / "extensions" / version / facts["platform"]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(packaged, target / packaged.name)

    def start(self, timeout: float = 60.0) -> BigQueryEmulator:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKLEDGER_")}
        env.update({"HOME": str(self.home), "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"})
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.venv / "bin" / "bqemulator"), "start",
                    "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
                    "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
                    "--project", self.project, "--persistent",
                    "--data-dir", str(self.workdir / "data"), "--log-level", "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bqemulator exited: {self.output()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.endpoint + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"bqemulator did not answer /healthz: {self.output()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
