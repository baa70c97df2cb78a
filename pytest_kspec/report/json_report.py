"""Writes the JSON drift report atomically: readers never see a half-written file.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_kspec.atomic import write_text


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` (temporary file, then rename)."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")
