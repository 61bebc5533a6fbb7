"""Intake's settings: the kit's plus where the organisations' catalogue lives."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class IntakeSettings(ServiceSettings):
    #: The organisations and their catalogues (TOML); see bpmn/organisations.toml.
    catalog_file: Path = Field(default=REPO_ROOT / "bpmn" / "organisations.toml")
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    #: Under load (several submissions waiting), how long a ticket-storing transaction waits for
    #: more to join it: fewer, larger transactions, at this much latency (kit/batching.py).
    submit_linger_seconds: float = Field(default=0.002, ge=0.0, le=0.1)
