from __future__ import annotations

from e2e.conftest import cluster  # noqa: F401  (the e2e cluster fixture)

from tests.alerts.conftest import receiver  # noqa: F401  (loopback HTTP receiver)
from tests.watch.conftest import watcher  # noqa: F401  (running watch processes)
