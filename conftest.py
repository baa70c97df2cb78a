"""Root test configuration: pytester for plugin tests; shared fixtures live in tests/conftest.py."""

# Imported here so that pytester's in-process runs find these libraries already loaded. The
# engine imports them lazily, and pytester drops the modules a run imported when the run ends:
# the next run then loads second copies beside objects that still hold the first. PyYAML's C
# extension cannot be loaded twice in one process (a re-imported ``yaml`` no longer recognises
# the nodes libyaml builds: "could not determine a constructor for the tag None"), and a second
# urllib3 raises exception classes the first copy's handlers do not catch.
import kubernetes.client  # noqa: F401
import urllib3  # noqa: F401
import yaml  # noqa: F401

pytest_plugins = ["pytester"]
