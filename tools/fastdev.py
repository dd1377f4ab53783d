"""Fast-dev-run of the chapters' full configuration, outside pytest (the same code as tests/fastdev).

Usage::

    python tools/fastdev.py                                  # every notebooks/ch*.md
    python tools/fastdev.py notebooks/ch06_coarse_fine.md --dir /tmp/fd --json /tmp/fd/results.json

Writes the fixture cache (datasets in their real formats, random ImageNet weight files in
torchvision's layout) into ``--dir`` (default: a new temporary directory), runs each chapter with
``CVLIB_SIZE=full CVLIB_FAST_DEV_RUN=1 CVLIB_DEVICE=cpu`` offline, and prints one line per chapter:
pass/fail, the failing cell and exception, the runtime and the slowest cells. Exit status 1 if any
chapter failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fastdev.fixtures import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
