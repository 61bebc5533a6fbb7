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
