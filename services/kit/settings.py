"""Typed settings shared by every service, read from the environment once in `main()`.

Every variable is prefixed `SUPPORTFLOW_`; e.g. `SUPPORTFLOW_DATABASE_URL`. Service settings extend
`ServiceSettings`. Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The development signing key. Refused outside `environment=dev`.
DEV_JWT_SECRET = "supportflow-dev-secret-change-me-0123456789"
_PLACEHOLDERS = {DEV_JWT_SECRET, "", "changeme", "change-me", "secret"}


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTFLOW_", extra="ignore", frozen=True)

    environment: Literal["dev", "test", "prod"] = "dev"
    database_url: str = "sqlite+aiosqlite:///supportflow.db"
    #: Connections per process; PostgreSQL only.
    database_pool_size: int = Field(default=10, ge=1, le=200)
    nats_url: str = "nats://127.0.0.1:4222"
    #: The JetStream stream holding every supportflow event (subjects `supportflow.>`).
    stream_name: str = "SUPPORTFLOW"
    #: How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
    stream_duplicate_window_seconds: float = Field(default=900.0, gt=0)
    grpc_host: str = "0.0.0.0"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    #: Largest request accepted, in bytes (attachments travel inline).
    grpc_max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Where Prometheus scrapes /metrics (0: any free port; unset: no metrics endpoint).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    #: Seconds in-flight calls get to finish on SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    #: HS256 signing key for bearer tokens; or set `jwt_public_key_file` for RS256/ES256.
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "supportflow"
    jwt_audience: str = "supportflow"
    #: Apply this service's database migrations at start-up (embedded default); in production run
    #: `supportflow migrate <service>` as a Kubernetes Job instead.
    migrate_on_start: bool = True
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    outbox_batch_size: int = Field(default=200, ge=1, le=10_000)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ServiceSettings:
        weak = self.jwt_secret.get_secret_value() in _PLACEHOLDERS or len(self.jwt_secret) < 32
        if self.environment != "dev" and self.jwt_public_key_file is None and weak:
            raise ValueError(
                "SUPPORTFLOW_JWT_SECRET must be set to a real secret of at least 32 characters "
                "(or SUPPORTFLOW_JWT_PUBLIC_KEY_FILE) when SUPPORTFLOW_ENVIRONMENT is not 'dev'"
            )
        return self
