"""promtool, from Debian's prometheus package: on PATH, or fetched once with
`apt-get download` (no root needed) and unpacked into the test cache, the way
the emulators are installed. None, with the reason, when it cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("HOOKLEDGER_EMULATOR_CACHE", Path.home() / ".cache" / "hookledger"))


def promtool() -> tuple[Path | None, str]:
    """The promtool binary, or None and why not."""
    found = shutil.which("promtool")
    if found:
        return Path(found), ""
    unpacked = CACHE / "prometheus" / "usr" / "bin" / "promtool"
    if unpacked.is_file():
        return unpacked, ""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return None, "promtool is not installed and apt-get/dpkg-deb are not here to fetch it"
    try:
        with tempfile.TemporaryDirectory() as download:
            command = ["apt-get", "download", "prometheus"]
            fetched = subprocess.run(
                command, cwd=download, capture_output=True, text=True, timeout=300, check=False
            )
            packages = list(Path(download).glob("prometheus_*.deb"))
            if fetched.returncode != 0 or not packages:
                return None, f"apt-get download prometheus failed: {fetched.stderr.strip()[-200:]}"
            target = CACHE / "prometheus"
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(packages[0]), str(target)], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"promtool could not be fetched: {type(exc).__name__}: {exc}"
    return (unpacked, "") if unpacked.is_file() else (None, "the package holds no promtool")
