"""Deployments made runnable: the bundle compiled once, its engine and calendars cached per
deployment (parsing is the expensive part; instances only carry their state)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from services.kit.errors import FieldViolation
from services.workflow.adapters.engine import clock as engine_clock
from services.workflow.adapters.engine.bundle import BundleRejected, CompiledBundle, compile_bundle
from services.workflow.adapters.engine.runner import SpiffProcessEngine
from services.workflow.application.ports import Bundle, Deployment, Runtime
from services.workflow.domain.calendar import BusinessCalendar
from services.workflow.domain.errors import BundleInvalid
from services.workflow.domain.sla import SlaError, parse_target

RUNTIMES_KEPT = 64


class SpiffBundleCompiler:
    """The `BundleCompiler` port: validates and compiles, or rejects with every problem."""

    def compile(self, files: Mapping[str, bytes]) -> Bundle:
        compiled = _compile(files)
        return Bundle(
            checksum=compiled.checksum,
            name=compiled.name,
            main_process=compiled.main_process,
            process_ids=compiled.process_ids,
            files=dict(compiled.files),
            warnings=compiled.warnings,
        )


def _compile(files: Mapping[str, bytes]) -> CompiledBundle:
    try:
        return compile_bundle(files)
    except BundleRejected as rejected:
        raise BundleInvalid(
            [
                FieldViolation(
                    f"files[{p.file}]" if p.file else "files",
                    f"{p.element_id}: {p.message}" if p.element_id else p.message,
                )
                for p in rejected.problems
            ]
        ) from rejected


def diagram_due(calendars: Mapping[str, BusinessCalendar], now: Callable[[], datetime]) -> Callable[[str, str], str]:
    """`due(duration, calendar)` for diagram code: the absolute due time (ISO 8601) of `duration`
    of working time from now in that calendar (bpmn/README.md)."""

    def due(duration: str, calendar: str) -> str:
        if calendar not in calendars:
            raise ValueError(f"unknown calendar {calendar!r} (known: {', '.join(sorted(calendars))})")
        try:
            return parse_target(duration).due(now(), calendars[calendar]).isoformat()
        except SlaError as exc:
            raise ValueError(str(exc)) from None

    return due


class CachedRuntimes:
    def __init__(self, *, step_time_limit: float) -> None:
        self._step_time_limit = step_time_limit
        self._cache: OrderedDict[str, Runtime] = OrderedDict()

    def cached(self, deployment_id: str) -> Runtime | None:
        found = self._cache.get(deployment_id)
        if found is not None:
            self._cache.move_to_end(deployment_id)
        return found

    async def runtime(
        self, deployment: Deployment, load_files: Callable[[], Awaitable[Mapping[str, bytes]]]
    ) -> Runtime:
        if (cached := self._cache.get(deployment.deployment_id)) is not None:
            self._cache.move_to_end(deployment.deployment_id)
            return cached
        compiled = _compile(await load_files())
        engine = SpiffProcessEngine(
            compiled.process_spec,
            compiled.subprocess_specs,
            diagram_functions={"due": diagram_due(compiled.calendars, engine_clock.engine_now)},
            step_time_limit=self._step_time_limit,
        )
        runtime = Runtime(deployment, engine, dict(compiled.calendars), compiled.default_calendar)
        self._cache[deployment.deployment_id] = runtime
        if len(self._cache) > RUNTIMES_KEPT:
            self._cache.popitem(last=False)
        return runtime
