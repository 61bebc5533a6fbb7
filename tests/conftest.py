"""Root conftest: registers the shared fixtures from :mod:`tests.support.fixtures`."""

pytest_plugins = ["tests.support.fixtures"]
