"""Test infrastructure: real PostgreSQL, NATS JetStream and service processes, never mocks.

- :mod:`tests.support.postgres`: ``PostgresServer``, ``find_postgres``, ``start_throwaway_cluster``
- :mod:`tests.support.nats`: ``NatsServer``, ``nats_binary``
- :mod:`tests.support.processes`: ``free_port``, ``ServiceProcess``
- :mod:`tests.support.fixtures`: the pytest fixtures (registered by ``tests/conftest.py``)

Environment overrides: ``SUPPORTFLOW_TEST_DATABASE_URL`` (a PostgreSQL server to use),
``SUPPORTFLOW_TEST_NATS_URL`` (a JetStream server to use for ``nats_url``),
``SUPPORTFLOW_TEST_NO_DOCKER=1`` (skip testcontainers), ``SUPPORTFLOW_TEST_POSTGRES_IMAGE``.
"""
