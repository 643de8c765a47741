"""A real browser for the console's tests: Debian's chromium and chromedriver
(installed with apt-get on first use where the tests run as root, as the
emulators are installed from PyPI; nothing downloads a browser), driven
headless by Selenium, and axe-core (from the npm registry, cached under
~/.cache/hookledger-tests) for the accessibility checks."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from tests.emulators.cloudtasks import cache_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE_VERSION = "4.10.3"


def chromium_or_reason() -> str | None:
    """None when chromium and chromedriver are here (installed now if need be),
    else why not."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "Debian's chromium and chromium-driver are not installed (apt-get needs root)"
    lock_path = cache_dir() / "chromium.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
            done = subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium",
                 "chromium-driver"],
                capture_output=True, text=True, timeout=600, check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )  # fmt: skip
            if done.returncode != 0:
                return f"apt-get could not install chromium: {done.stderr.strip()[-300:]}"
    return None


def axe_script() -> Path | str:
    """axe-core's script (installed with npm on first use), or why not."""
    target = cache_dir() / f"axe-core-{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    if shutil.which("npm") is None:
        return "npm is not installed: axe-core cannot be installed"
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            done = subprocess.run(
                ["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund",
                 f"axe-core@{AXE_VERSION}"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                return f"npm could not install axe-core: {done.stderr.strip()[-300:]}"
    return script
