"""Composition root: settings, secrets, database, migrations, CLI, wiring."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hookledger")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
