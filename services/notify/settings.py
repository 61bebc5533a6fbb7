"""The notify service's settings: the kit's plus where its rules, directory and templates live and
how it reaches the SMTP server."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.kit.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class NotifySettings(ServiceSettings):
    #: rules.toml, directory.toml and templates/ (see bpmn/notify/); re-read when they change.
    config_dir: Path = Field(default=REPO_ROOT / "bpmn" / "notify")
    #: How often the configuration files are checked for changes.
    config_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    grpc_port: int = Field(default=50053, ge=0, le=65535)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    #: The domain of Message-IDs (`<…@domain>`), so one ticket's mails thread together.
    mail_domain: str = "supportflow.local"
    #: Seconds one send may take before it counts as failed.
    send_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: Attempts before a notification is marked dead (RetryNotification revives it).
    max_attempts: int = Field(default=6, ge=1, le=50)
    #: How often the senders look for due notifications when nothing woke them.
    sender_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    #: Notifications one sender loop claims at a time (per channel).
    sender_batch: int = Field(default=20, ge=1, le=500)
    #: Sends in flight at once per channel (each sender has its own threads: a hanging webhook
    #: receiver never takes e-mail's).
    sender_workers: int = Field(default=4, ge=1, le=64)
