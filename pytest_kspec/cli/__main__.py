"""``python -m pytest_kspec.cli``: the ``kspec`` command without its console script.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import sys

from pytest_kspec.cli.main import main

sys.exit(main())
