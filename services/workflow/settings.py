"""The workflow service's settings: the kit's plus the default bundle and the engine's limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class WorkflowSettings(ServiceSettings):
    #: The bundle an organisation runs until it deploys its own (bpmn/ of this repository).
    default_bundle_dir: Path = Field(default=REPO_ROOT / "bpmn")
    grpc_port: int = Field(default=50052, ge=0, le=65535)
    #: Longest a single expression, script or DMN cell may run before its step fails with an incident.
    step_time_limit_seconds: float = Field(default=1.0, gt=0, le=30)
    #: How often the scheduler looks for due timers and SLA checks when nothing woke it earlier.
    scheduler_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    #: Instances woken per scheduler round (each in its own transaction).
    scheduler_batch: int = Field(default=50, ge=1, le=1000)
