"""``python -m benchmarks.ingest``."""

import sys

from benchmarks.ingest.cli import main

sys.exit(main())
