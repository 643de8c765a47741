"""The one-way import rule between the packages of src/ (docs/architecture.md),
checked by reading every module's imports with ``ast``, so a violation fails here
with its file and line rather than surfacing later as an import cycle."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Which of hookledger's packages each package may import, besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "events": frozenset(),
    "projections": frozenset({"events"}),
    "exporter": frozenset({"events"}),
    "api": frozenset({"events"}),
    "scheduler": frozenset({"events", "projections"}),
    "personal": frozenset({"events"}),
    "hookledger": frozenset({"events", "projections", "scheduler", "exporter", "api", "personal"}),
}
PACKAGES = frozenset(ALLOWED)

# The database driver stays behind one module (events.connector).
DRIVERS = frozenset({"psycopg", "psycopg_pool"})
DRIVER_HOME = "events/connector.py"


def module_name(path: Path) -> str:
    """``src/api/routes/reads.py`` -> ``api.routes.reads`` (a package's
    ``__init__.py`` is the package itself)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, at any depth:
    in functions and under ``if TYPE_CHECKING:`` alike, relative ones resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module or ""
                continue
            # `from . import x` inside a module is relative to its package.
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])


def violations(path: Path, source: str) -> list[str]:
    """What ``path`` (under src/) imports against the rule, one line per import."""
    relative = path.relative_to(SRC).as_posix()
    module = module_name(path)
    own = module.split(".")[0]
    if own not in PACKAGES:
        return [f"{relative}: package {own!r} is not in the import rule (add it to ALLOWED)"]
    found = []
    for line, name in imported_modules(source, module, path.name == "__init__.py"):
        top = name.split(".")[0]
        if top in PACKAGES and top != own and top not in ALLOWED[own]:
            may = ", ".join(sorted(ALLOWED[own])) or "none of the others"
            found.append(f"{relative}:{line}: imports {name} ({own} may import {may})")
        if top in DRIVERS and relative != DRIVER_HOME:
            found.append(f"{relative}:{line}: imports {name} (only {DRIVER_HOME} may)")
    return found


def test_every_package_of_src_imports_only_what_the_one_way_rule_allows() -> None:
    modules = sorted(SRC.rglob("*.py"))
    assert modules, f"no modules found under {SRC}"
    found = [v for path in modules for v in violations(path, path.read_text())]
    assert not found, "imports against the rule in docs/architecture.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("path", "source", "offence"),
    [
        ("events/store.py", "from projections.fold import fold\n", "imports projections.fold"),
        ("events/store.py", "import api.errors\n", "imports api.errors"),
        ("api/intake.py", "from scheduler import timers\n", "imports scheduler"),
        ("projections/fold.py", "from exporter.batch import x\n", "imports exporter.batch"),
        ("exporter/batch.py", "def f():\n    import hookledger.settings\n", "hookledger"),
        ("scheduler/timers.py", "from api.services import Services\n", "imports api.services"),
        (
            "scheduler/policy.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from exporter import x\n",
            "imports exporter",
        ),
        ("api/routes/reads.py", "import psycopg\n", "only events/connector.py may"),
    ],
)
def test_an_import_against_the_rule_is_reported_with_its_file_and_import(
    path: str, source: str, offence: str
) -> None:
    (found,) = violations(SRC / path, source)
    assert found.startswith(path + ":")
    assert offence in found


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("scheduler/policy.py", "from projections.fold import fold\nfrom events import model\n"),
        ("hookledger/wiring.py", "from api.app import create_app\nimport exporter.runner\n"),
        ("api/app.py", "from api.errors import x\nfrom events.errors import HookledgerError\n"),
        ("events/connector.py", "import psycopg\nimport psycopg_pool\n"),
        ("exporter/parquet.py", "import pyarrow\nfrom google.cloud import bigquery\n"),
    ],
)
def test_imports_the_rule_allows_are_not_reported(path: str, source: str) -> None:
    assert violations(SRC / path, source) == []


def test_a_relative_import_is_judged_by_the_package_it_reaches() -> None:
    assert violations(SRC / "api/routes/reads.py", "from ..errors import x\n") == []
    (found,) = violations(SRC / "events/model.py", "from ..projections import fold\n")
    assert "imports projections" in found


def test_a_package_missing_from_the_rule_is_reported() -> None:
    (found,) = violations(SRC / "console/pages.py", "import events\n")
    assert "'console' is not in the import rule" in found


def test_the_wheel_ships_every_package() -> None:
    # A package missing here is missing from `pip install .` (the image) only:
    # editable installs, which the tests use, would not notice.
    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    shipped = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    found = {f"src/{p.name}" for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert found == shipped
