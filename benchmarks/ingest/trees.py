"""The code trees a run can measure: this checkout, and another one to compare
it with (``--compare``), whose server runs on this venv's dependencies."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TreeError(ValueError):
    """``--compare`` names neither a checkout nor a commit of this repository."""


@dataclass(frozen=True)
class CodeTree:
    """A tree holding ``src/`` and ``migrations/``, as a checkout does."""

    label: str
    root: Path
    origin: str
    slug: str = ""  # added to the names of its runs' files

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with this tree's packages first on the server's path, ahead of
        the venv's editable install (which points at this checkout)."""
        path = [str(self.root / "src"), *filter(None, [env.get("PYTHONPATH")])]
        return {**env, "PYTHONPATH": os.pathsep.join(path)}


def this_tree() -> CodeTree:
    return CodeTree("this tree", ROOT, _describe(ROOT))


def other_tree(spec: str, scratch: Path) -> CodeTree:
    """``spec``: a directory holding a checkout, used as it is, or a git ref of this
    repository, whose ``src/`` and ``migrations/`` are exported under ``scratch``."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "src" / "hookledger").is_dir() or not (path / "migrations").is_dir():
            raise TreeError(f"--compare {spec}: no src/hookledger and migrations/ there")
        return CodeTree(spec, path.resolve(), _describe(path.resolve()), _slug(spec))
    found = _git(ROOT, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if found.returncode != 0:
        raise TreeError(f"--compare {spec}: neither a directory nor a git ref of {ROOT}")
    commit = found.stdout.decode().strip()
    target = scratch / f"tree-{commit[:12]}"
    target.mkdir()
    archive = _git(ROOT, "archive", "--format=tar", commit, "src", "migrations")
    if archive.returncode != 0:
        raise TreeError(f"--compare {spec}: git archive failed: {archive.stderr.decode()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return CodeTree(spec, target, f"commit {commit[:12]}, exported to {target}", _slug(spec))


def _slug(spec: str) -> str:
    return "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")


def _describe(root: Path) -> str:
    """Where a tree is and which commit it holds, ``+ changes`` when it has some."""
    head = _git(root, "rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return str(root)
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    return f"{root} at {head.stdout.decode().strip()}{' + changes' if dirty else ''}"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
