"""The container, without Docker (it cannot build here): hadolint passes on the
Dockerfile, and the Dockerfile's install step, done in a clean venv, gives a
``hookledger`` that starts with its SQL and migrations packaged.

To stay fast the clean venv installs this project only (``--no-deps``) and
reaches the dependencies of the test venv through a path entry: what is proved
is that the package the Dockerfile builds is complete, not that PyPI works.
What pip would bring in with it is read from the built package's metadata and
the test venv's: the embedded Postgres (pgserver) must not be among it.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def installed_with(requirements: Iterable[str], extras: frozenset[str]) -> set[str]:
    """Every distribution that installing ``requirements`` (for ``extras``) pulls in,
    followed through the metadata of the distributions this venv has."""
    found: set[str] = set()
    todo = [(Requirement(text), extras) for text in requirements]
    while todo:
        requirement, wanted = todo.pop()
        environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate(env) for env in environments):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        below = importlib.metadata.distribution(requirement.name).requires or []
        todo.extend((Requirement(text), frozenset(requirement.extras)) for text in below)
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_non_root_user_and_serves_on_port() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 2  # multi-stage
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'hookledger serve --host 0.0.0.0 --port \\"$PORT\\"' in text


def test_the_dockerfile_s_install_in_a_clean_venv_gives_a_working_hookledger(
    tmp_path: Path,
) -> None:
    text = DOCKERFILE.read_text()
    install = re.search(r"/opt/hookledger/bin/pip install (.*)$", text, re.MULTILINE)
    assert install is not None
    assert install.group(1).split()[-1] == "."  # the project, as the README installs it
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for source in copied.split():
            assert (ROOT / source).exists(), source
    # The Dockerfile copies only these: build from a copy holding nothing else.
    source = tmp_path / "src-copy"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("src", "migrations"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", *install.group(1).split()]
    pip[-1] = str(source)
    done = subprocess.run(pip, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies, from the test venv (its .pth files, such as the editable
    # install of this project, are not read from a path entry).
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = (
        "import hookledger, scheduler.cloudtasks, hookledger.selftest, hookledger.migrations as m;"
        "print(hookledger.__file__); print(len(m.discover()))"
    )
    shown = subprocess.run([str(python), "-c", check], capture_output=True, text=True,
                           cwd=tmp_path, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    where, migrations = shown.stdout.split()
    assert where.startswith(site)  # the installed copy, not the source tree
    assert int(migrations) == len(list((ROOT / "migrations").glob("*.sql")))
    helped = subprocess.run([str(venv / "bin" / "hookledger"), "--help"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "selftest" in helped.stdout

    # What the image's pip would install: the runtime, without the embedded Postgres.
    (built,) = importlib.metadata.distributions(name="hookledger", path=[site])
    runtime = installed_with(built.requires or [], frozenset())
    assert {"psycopg", "uvicorn", "litestar", "psycopg-binary"} <= runtime  # the walk works
    assert "pgserver" not in runtime
    assert "pgserver" in installed_with(built.requires or [], frozenset({"embedded"}))
