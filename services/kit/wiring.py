"""What every service's composition root builds the same way from its settings: the NATS
connection and the gRPC host (token verification, limits, grace, a database health probe)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.kit import db
from services.kit.auth import TokenVerifier
from services.kit.messaging import NatsConnection
from services.kit.rpc.server import ServiceHost
from services.kit.settings import ServiceSettings


def nats_connection(settings: ServiceSettings, name: str) -> NatsConnection:
    return NatsConnection(
        settings.nats_url,
        name=name,
        stream=settings.stream_name,
        duplicate_window_seconds=settings.stream_duplicate_window_seconds,
    )


def service_host(settings: ServiceSettings, name: str, service_name: str, engine: AsyncEngine) -> ServiceHost:
    """The gRPC host of `service_name`, SERVING while `engine`'s database answers."""
    verifier = TokenVerifier(
        secret=settings.jwt_secret.get_secret_value(),
        public_key_file=settings.jwt_public_key_file,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return ServiceHost(
        name=name,
        service_names=[service_name],
        verifier=verifier,
        max_message_bytes=settings.grpc_max_message_bytes,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        probe=lambda: db.ping(engine),
    )
