"""Benchmark: the workflow service next to bare SpiffWorkflow on the same diagrams, in one run.

    .venv/bin/python -m benchmarks.workflow_engine [--instances 400] [--open 100000] [--check]

1. bare:    SpiffWorkflow alone (its default script engine, as shipped: no sandbox, no database)
            starts instances of the bundle's main process, with the start variables the service
            would give, and runs each to its first wait state.
   (info)   the same with the two caches the service's engine has and SpiffWorkflow as shipped
            lacks — each expression compiled once, each DMN cell rewritten and syntax-checked once;
            shipped, it spends about a third of its time on those. No target: the target's
            reference is SpiffWorkflow as shipped, and the service's ratio to this row is what is
            left of its own overhead.
2. service: the workflow service (in this process: gRPC host, consumer, scheduler, outbox relay)
            on PostgreSQL and JetStream gets `ticket.submitted` events and starts an instance for
            each — engine, sandbox, SLA clocks, tasks, history, state, outbox — one transaction per
            fetched burst. Timed from the first submission sent until every instance is stored and
            the events they caused have been published (the outbox is empty again).
3. loaded:  step 2 again after `--open` parked instances were added to the database.
4. timers:  tickets arriving at a steady `--timer-rate` per second whose SLA clocks fall due two
            seconds later (the bundle's targets shortened); the scheduler's lateness (wake-up time
            minus due time) p50/p99 over those wake-ups.

Targets (issue #3): service ≥ 50 % of bare; timer lateness p99 < 1 s; loaded within 20 % of empty.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import CodeType
from typing import Any

import nats
from pydantic import SecretStr
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import text
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.kit.auth import PROCESS_ADMIN, Principal
from services.kit.events import new_event, subject_for
from services.kit.messaging import ensure_stream
from services.workflow.adapters.engine.bundle import compile_bundle
from services.workflow.adapters.engine.files import read_bundle_dir
from services.workflow.adapters.runtimes import diagram_due
from services.workflow.application import handlers
from services.workflow.bootstrap import Workflow, bootstrap
from services.workflow.settings import WorkflowSettings
from tests.support.nats import NatsServer
from tests.support.postgres import find_postgres, unique_database_name

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-0123456789-0123456789-abcdef"
TARGET_RATIO, TARGET_LATENESS_P99, TARGET_LOADED = 0.5, 1.0, 0.8


def start_variables(number: str, urgency: str = "high") -> dict[str, Any]:
    return {
        "ticket_number": number,
        "organization": "acme",
        "title": "ERP client crashes",
        "problem_type": "software_crash",
        "impact_scope": "department",
        "urgency": urgency,
        "vip": False,
        "channel": "portal",
        "requester_id": "E1001",
        "info_incomplete": False,
        "missing_info": [],
        "submitted_at": "",
    }


class BareEngine(PythonScriptEngine):  # type: ignore[misc]
    """SpiffWorkflow's own script engine; like ours, a message throw without payload is None."""

    def evaluate(self, task: Any, expression: Any, external_context: Any = None) -> Any:
        return None if expression is None else super().evaluate(task, expression, external_context)


@functools.lru_cache(maxsize=4096)
def _code(source: str, mode: str) -> CodeType:
    return compile(source, "<string>", mode)


class CompiledOnceEnvironment(TaskDataEnvironment):  # type: ignore[misc]
    """TaskDataEnvironment compiling each expression and script text once (SpiffWorkflow's
    compiles it at every evaluation): what the service's sandbox does, for the reference row."""

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        my_globals = {**self.globals, **(external_context or {}), **context}
        return eval(_code(expression, "eval"), my_globals)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        self.check_for_overwrite(context, external_context or {})
        context.update({**self.globals, **(external_context or {})})
        try:
            exec(_code(script, "exec"), context)
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        return True


class CellsOnceDMNEngine(DMNEngine):  # type: ignore[misc]
    """SpiffWorkflow's DMN engine with what `DMNEngine.evaluate` derives from a cell's text (the
    `?` rewriting and the syntax checks deciding how to join input and cell) done once per cell,
    as the service's does (explain.py), without the service's explanations."""

    _INPUT = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')

    def __init__(self, decision_table: Any) -> None:
        super().__init__(decision_table)
        self._cells: dict[tuple[str, str], tuple[bool, str]] = {}

    def evaluate(self, input_expr: str, match_expr: str | None, task: Any) -> Any:
        if match_expr is None:
            return True
        script_engine = task.workflow.script_engine
        if (cell := self._cells.get((input_expr, match_expr))) is None:
            expr = self._INPUT.sub("dmninputexpr", match_expr)
            if "dmninputexpr" in expr:
                cell = (True, expr)
            else:
                script_engine.validate(input_expr)
                cell = (
                    False,
                    f"({input_expr}) == ({expr})" if self.needs_eq(script_engine, expr) else input_expr + expr,
                )
            self._cells[(input_expr, match_expr)] = cell
        uses_input, expression = cell
        if uses_input:
            value = script_engine.evaluate(task, input_expr)
            return script_engine.evaluate(task, expression, external_context={"dmninputexpr": value})
        return script_engine.evaluate(task, expression)


def bare(bundle_dir: Path, n: int, warm_up: int = 20, *, compiled_once: bool = False) -> float:
    """Instances/s of the engine alone: warmed up as the service is, and timed around the engine's
    work only (the check that each instance waits for a person is not part of it).

    `compiled_once`: with the two caches the service's engine has and SpiffWorkflow's lacks
    (expressions compiled once, DMN cells prepared once) — not the target's reference, but what
    says how much of the ratio is the service's overhead and how much SpiffWorkflow's compiling."""
    compiled = compile_bundle(read_bundle_dir(bundle_dir))
    due = diagram_due(compiled.calendars, lambda: datetime.now(UTC))
    environment = (CompiledOnceEnvironment if compiled_once else TaskDataEnvironment)({"due": due})
    engine = BareEngine(environment=environment)
    if compiled_once:
        for spec in [compiled.process_spec, *compiled.subprocess_specs.values()]:
            for task_spec in spec.task_specs.values():
                if getattr(task_spec, "dmnEngine", None) is not None:
                    task_spec.dmnEngine = CellsOnceDMNEngine(task_spec.dmnEngine.decision_table)
    elapsed = 0.0
    for i in range(-warm_up, n):
        started = time.perf_counter()
        wf = BpmnWorkflow(compiled.process_spec, compiled.subprocess_specs, script_engine=engine)
        wf.get_next_task(state=TaskState.READY).data.update(start_variables(f"TS20260302{i:06d}"))
        wf.do_engine_steps()
        if i >= 0:
            elapsed += time.perf_counter() - started
        assert wf.get_tasks(state=TaskState.READY, manual=True), "the process should wait for a person"
    return n / elapsed


async def publish_submissions(url: str, numbers: list[str], urgency: str = "high") -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(js, "SUPPORTFLOW", 900.0)
    for number in numbers:
        v = start_variables(number, urgency)
        event = new_event(
            payload=events_pb2.TicketSubmitted(
                title=v["title"],
                requester=types_pb2.Requester(id="E1001"),
                channel="portal",
                problem_type=v["problem_type"],
                impact_scope="department",
                urgency=urgency,
            ),
            org="acme",
            ticket_number=number,
            producer="intake",
            actor_subject="E1001",
            actor_role="requester",
            occurred_at=datetime.now(UTC),
        )
        await js.publish_async(
            subject_for("acme", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
        )
    await js.publish_async_completed()
    await nc.close()


async def started(service: Workflow, prefix: str) -> int:
    """Instances of this round's tickets: a walk of the primary key over them alone (a count of
    the whole table, 100,000 rows in the loaded round, would take CPU from the service it measures)."""
    async with service.engine.connect() as conn:
        query = text("SELECT count(*) FROM workflow_instances WHERE ticket_number >= :low AND ticket_number < :high")
        return int(await conn.scalar(query, {"low": prefix, "high": prefix + "~"}) or 0)


async def outbox_left(service: Workflow) -> int:
    async with service.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM workflow_outbox")) or 0)


async def paced_timers(service: Workflow, nats_url: str, n: int, rate: float) -> list[float]:
    """Submit `n` tickets at `rate` per second; return the lateness of the wake-ups they cause."""
    seen = len(service.scheduler.lateness)
    for i in range(n):
        await publish_submissions(nats_url, [f"TSTIMER{i:06d}"])
        await asyncio.sleep(1 / rate)
    deadline = time.monotonic() + 30
    while len(service.scheduler.lateness) - seen < n and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)  # the scheduler works on its own: polled, not signalled
    await asyncio.sleep(3)  # the later clock checks (breach after warning) of the last tickets
    return service.scheduler.lateness[seen:]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("inf")


async def service_rate(service: Workflow, nats_url: str, n: int, prefix: str) -> float:
    """From the first submission sent (the service consumes while they are being published) until
    every instance is stored and the events they caused have left the outbox."""
    numbers = [f"{prefix}{i:06d}" for i in range(n)]
    begun = time.perf_counter()
    await publish_submissions(nats_url, numbers)
    while await started(service, prefix) < n or await outbox_left(service):
        await asyncio.sleep(0.05)
        if time.perf_counter() - begun > 600:
            raise TimeoutError("the service did not start the instances within 10 minutes")
    return n / (time.perf_counter() - begun)


async def park_open_instances(service: Workflow, count: int) -> None:
    """Copies of one parked instance under new ticket numbers, as a busy installation would hold."""
    async with service.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO workflow_instances (ticket_number, organization, deployment_id, process_id, state,
                    engine_state, revision, wake_at, started_at, ended_at, variables, active_steps, routing, incidents)
                SELECT 'OPEN' || lpad(g::text, 10, '0'), organization, deployment_id, process_id, state,
                    engine_state, revision, now() + interval '30 days', started_at, ended_at, variables,
                    active_steps, routing, incidents
                FROM workflow_instances, generate_series(1, :count) AS g
                WHERE ticket_number = (SELECT min(ticket_number) FROM workflow_instances)
                """
            ),
            {"count": count},
        )
    # A freshly loaded table is vacuumed and analysed before measuring, as autovacuum soon would,
    async with service.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE workflow_instances"))
        # and its pages written out, so the measurement does not pay for the bulk load's I/O.
        await conn.execute(text("CHECKPOINT"))


def short_timer_bundle(bundle_dir: Path, workdir: Path) -> Path:
    """The same bundle whose SLA targets are two seconds, so timers come due during the run."""
    target = workdir / "short-timers"
    shutil.copytree(bundle_dir, target)
    for dmn in target.rglob("*.dmn"):
        content = dmn.read_text()
        for duration in ('"PT15M"', '"PT30M"', '"PT1H"', '"PT2H"', '"PT4H"', '"PT8H"', '"P3D"', '"P5D"', '"EOD"'):
            content = content.replace(duration, '"PT2S"')
        dmn.write_text(content)
    return target


async def run(args: argparse.Namespace, database_url: str, nats_url: str, workdir: Path) -> bool:
    bare_rate = bare(args.bundle, args.instances)
    print(f"  bare SpiffWorkflow: {bare_rate:.0f} instances/s", file=sys.stderr, flush=True)
    cached_rate = bare(args.bundle, args.instances, compiled_once=True)
    print(f"  bare SpiffWorkflow, compiled once: {cached_rate:.0f} instances/s", file=sys.stderr, flush=True)

    settings = WorkflowSettings(
        environment="test",
        database_url=database_url,
        nats_url=nats_url,
        jwt_secret=SecretStr(SECRET),
        grpc_host="127.0.0.1",
        grpc_port=0,
        default_bundle_dir=args.bundle,
        scheduler_poll_seconds=0.5,
        outbox_poll_seconds=0.2,
        log_level="WARNING",
    )
    service = bootstrap(settings)
    await service.start()
    try:
        await service_rate(service, nats_url, 20, "TSWARM")  # deploys the bundle, warms caches
        rate = await service_rate(service, nats_url, args.instances, "TSEMPTY")
        print(f"  service (empty database): {rate:.0f} instances/s", file=sys.stderr, flush=True)
        await park_open_instances(service, args.open)
        loaded = await service_rate(service, nats_url, args.instances, "TSLOADED")
        print(f"  service ({args.open} open instances): {loaded:.0f} instances/s", file=sys.stderr, flush=True)
        # The same process with two-second SLA targets, deployed as the organisation's next version.
        admin = Principal(subject="benchmark", org="acme", roles=frozenset({PROCESS_ADMIN}))
        files = read_bundle_dir(short_timer_bundle(args.bundle, workdir))
        await handlers.deploy_process(service.deps, admin, "acme", files, dry_run=False, description="short timers")
        late = await paced_timers(service, nats_url, args.timer_instances, args.timer_rate)
        p50, p99 = percentile(late, 0.5), percentile(late, 0.99)
        print(f"  timers: {len(late)} wake-ups, lateness p50 {p50:.3f}s p99 {p99:.3f}s", file=sys.stderr)
    finally:
        await service.host.shutdown()
    return report(bare_rate, cached_rate, rate, loaded, p99, args)


def report(
    bare_rate: float, cached_rate: float, rate: float, loaded: float, p99: float | None, args: argparse.Namespace
) -> bool:
    ratio, loaded_ratio = rate / bare_rate, loaded / rate
    late = p99 if p99 is not None else float("inf")
    rows = [
        ("bare SpiffWorkflow (same diagrams, memory only)", f"{bare_rate:8.0f} instances/s", ""),
        ("workflow service, empty database", f"{rate:8.0f} instances/s", f"{ratio:.0%} of bare"),
        (
            f"workflow service, {args.open:,} open instances",
            f"{loaded:8.0f} instances/s",
            f"{loaded_ratio:.0%} of empty",
        ),
        ("timer lateness p99", f"{late:8.3f} s", ""),
        (
            "bare, expressions and DMN cells compiled once (info)",
            f"{cached_rate:8.0f} instances/s",
            f"service {rate / cached_rate:.0%} of it",
        ),
    ]
    print()
    for label, value, note in rows:
        print(f"{label:52} {value:20} {note}")
    checks = [
        (f"service ≥ {TARGET_RATIO:.0%} of bare", ratio >= TARGET_RATIO),
        (f"timer lateness p99 < {TARGET_LATENESS_P99:.0f} s", late < TARGET_LATENESS_P99),
        ("loaded within 20 % of empty", loaded_ratio >= TARGET_LOADED),
    ]
    print()
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")
    return all(ok for _, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO / "bpmn", help="the bundle to run (default: bpmn/)")
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--open", type=int, default=100_000, help="parked instances for the loaded measurement")
    parser.add_argument("--timer-instances", type=int, default=200, help="tickets for the timer measurement")
    parser.add_argument("--timer-rate", type=float, default=50.0, help="their arrival rate per second")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sf-bench-wf-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        nats_server = NatsServer(workdir / "nats")
        nats_server.start()
        stack.callback(nats_server.stop)
        server = find_postgres(workdir)
        name = unique_database_name("sf_bench_wf_")
        database_url = server.create_database(name)
        stack.callback(server.drop_database, name)
        ok = asyncio.run(run(args, database_url, nats_server.url, workdir))
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
