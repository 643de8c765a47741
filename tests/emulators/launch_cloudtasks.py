"""Runs gcloud-tasks-emulator bound to 127.0.0.1 (upstream binds every
interface), in the emulator's own venv: ``python launch_cloudtasks.py PORT``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import grpc  # type: ignore[import-untyped,unused-ignore]

_server = grpc.server


def _local_server(*args: Any, **kwargs: Any) -> Any:
    server = _server(*args, **kwargs)
    add_port = server.add_insecure_port
    server.add_insecure_port = lambda address: add_port(address.replace("[::]", "127.0.0.1"))
    return server


def main() -> None:
    grpc.server = _local_server
    logging.basicConfig(level=logging.INFO)  # the tests read which tasks were made
    from gcloud_tasks_emulator.server import create_server  # type: ignore[import-not-found]

    create_server("127.0.0.1", int(sys.argv[1])).run()


if __name__ == "__main__":
    main()
