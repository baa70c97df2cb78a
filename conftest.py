"""Root test configuration: pytester for plugin tests; shared fixtures live in tests/conftest.py."""

pytest_plugins = ["pytester"]
