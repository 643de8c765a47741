"""The README's Python scripts, as an auditor would copy them: each test runs
the published text, not a copy of it, so the documentation cannot drift."""

from __future__ import annotations

import re
from typing import Any

from tests.support import ROOT

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def readme_script(marker: str) -> str:
    """The README's one Python block that contains ``marker``."""
    blocks = [b for b in _BLOCK.findall((ROOT / "README.md").read_text()) if marker in b]
    assert len(blocks) == 1, f"expected one README block with {marker!r}, found {len(blocks)}"
    return str(blocks[0])


def run_readme_script(marker: str, replace: dict[str, str], names: dict[str, Any]) -> None:
    """Run a README block with some of its lines replaced (the service's address,
    a file name); raises what the script raises (AssertionError when a check fails)."""
    source = readme_script(marker)
    for old, new in replace.items():
        assert old in source, f"the README block no longer has {old!r}"
        source = source.replace(old, new)
    exec(compile(source, "README.md", "exec"), dict(names))  # noqa: S102 - the README's own text
