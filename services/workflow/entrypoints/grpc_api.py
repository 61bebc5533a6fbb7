"""The WorkflowService servicer: proto → command → handler → proto. Errors are mapped by the kit's interceptor."""

from __future__ import annotations

from datetime import datetime

import grpc
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.kit.auth import SERVICE, Principal, current_principal
from services.kit.errors import FieldViolation
from services.workflow.application import handlers
from services.workflow.application.ports import InstanceQuery, TaskQuery
from services.workflow.application.progress import Actor
from services.workflow.domain.errors import InvalidRequest
from services.workflow.entrypoints import translate as tr

Context = grpc.aio.ServicerContext[object, object]
DEFAULT_PAGE, MAX_PAGE = 50, 500
MAX_BUNDLE_FILES = 500


def _page_size(size: int) -> int:
    if not 0 <= size <= MAX_PAGE:
        raise InvalidRequest(
            [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")]
        )
    return size or DEFAULT_PAGE


def _require(request: object, *fields: str) -> None:
    violations = [FieldViolation(f, "is required") for f in fields if not getattr(request, f)]
    if violations:
        raise InvalidRequest(violations)


class WorkflowServicer(workflow_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, deps: handlers.WorkflowDeps) -> None:
        self._deps = deps

    def _now(self) -> datetime:
        return self._deps.clock.now()

    async def DeployProcess(self, request: pb.DeployProcessRequest, context: Context) -> pb.DeployProcessResponse:
        principal = current_principal()
        if len(request.files) > MAX_BUNDLE_FILES:
            raise InvalidRequest([FieldViolation("files", f"at most {MAX_BUNDLE_FILES} files per bundle")])
        paths = [f.path for f in request.files]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise InvalidRequest([FieldViolation("files", f"the same path twice: {', '.join(duplicates)}")])
        result = await handlers.deploy_process(
            self._deps,
            principal,
            request.organization or principal.org,
            {f.path: f.content for f in request.files},
            dry_run=request.dry_run,
            description=request.description,
        )
        out = pb.DeployProcessResponse(warnings=result.warnings, next_version=result.next_version)
        if result.deployment is not None:
            out.deployment.CopyFrom(tr.deployment_pb(result.deployment))
        return out

    async def ListDeployments(self, request: pb.ListDeploymentsRequest, context: Context) -> pb.ListDeploymentsResponse:
        principal = current_principal()
        size = _page_size(request.page_size)
        found = await handlers.list_deployments(
            self._deps, principal, request.organization or principal.org, tr.decode_version(request.page_token), size
        )
        token = tr.encode_page_token([found[-1].version]) if len(found) == size else ""
        return pb.ListDeploymentsResponse(deployments=[tr.deployment_pb(d) for d in found], next_page_token=token)

    async def _instance(self, principal: Principal, ticket_number: str) -> pb.ProcessInstance:
        view = await handlers.get_instance(self._deps, principal, ticket_number)
        return tr.instance_pb(view, self._now())

    async def GetProcessInstance(self, request: pb.GetProcessInstanceRequest, context: Context) -> pb.ProcessInstance:
        return await self._instance(current_principal(), request.ticket_number)

    async def ListProcessInstances(
        self, request: pb.ListProcessInstancesRequest, context: Context
    ) -> pb.ListProcessInstancesResponse:
        principal = current_principal()
        size = _page_size(request.page_size)
        if request.deployment_version < 0:
            raise InvalidRequest([FieldViolation("deployment_version", "must be a version (1, 2, …) or 0 for any")])
        query = InstanceQuery(
            organization=request.organization or principal.org,
            states=tuple(tr.INSTANCE_STATE_FROM_PB[s] for s in request.states if s in tr.INSTANCE_STATE_FROM_PB),
            process_id=request.process_id,
            deployment_version=request.deployment_version,
            after=tr.decode_position(request.page_token),
            limit=size,
        )
        found = await handlers.list_instances(self._deps, principal, query)
        last = found[-1].instance if len(found) == size else None
        token = tr.encode_position(last.started_at, last.ticket_number) if last else ""
        now = self._now()
        return pb.ListProcessInstancesResponse(
            instances=[tr.instance_pb(view, now) for view in found], next_page_token=token
        )

    async def ListTasks(self, request: pb.ListTasksRequest, context: Context) -> pb.ListTasksResponse:
        principal = current_principal()
        size = _page_size(request.page_size)
        query = TaskQuery(
            organization=request.organization or principal.org,
            states=tuple(tr.TASK_STATE_FROM_PB[s] for s in request.states if s in tr.TASK_STATE_FROM_PB),
            assignee=request.assignee,
            candidate_groups=(request.candidate_group,) if request.candidate_group else (),
            ticket_number=request.ticket_number,
            after=tr.decode_position(request.page_token),
            limit=size,
        )
        found = await handlers.list_tasks(self._deps, principal, query)
        token = tr.encode_position(found[-1].created_at, found[-1].task_id) if len(found) == size else ""
        return pb.ListTasksResponse(tasks=[tr.task_pb(t) for t in found], next_page_token=token)

    async def ClaimTask(self, request: pb.ClaimTaskRequest, context: Context) -> pb.Task:
        claimed = await handlers.claim_task(self._deps, current_principal(), request.task_id, request.assignee)
        return tr.task_pb(claimed)

    async def CompleteTask(self, request: pb.CompleteTaskRequest, context: Context) -> pb.Task:
        variables = tr.from_struct(request.variables)
        done = await handlers.complete_task(
            self._deps, current_principal(), request.task_id, variables, request.request_id
        )
        return tr.task_pb(done)

    async def CorrelateMessage(
        self, request: pb.CorrelateMessageRequest, context: Context
    ) -> pb.CorrelateMessageResponse:
        principal = current_principal()
        _require(request, "name", "correlation_key")
        org = request.organization or principal.org
        principal.require_org(org)
        principal.require_any(SERVICE, "integration", "agent", "team_lead", action="correlating a message")
        delivered = await handlers.correlate_message(
            self._deps,
            Actor(principal.subject, principal.primary_role),
            org,
            request.name,
            request.correlation_key,
            tr.from_struct(request.variables),
            request.message_id,
        )
        return pb.CorrelateMessageResponse(ticket_number=request.correlation_key, duplicate=not delivered)

    async def CancelProcessInstance(
        self, request: pb.CancelProcessInstanceRequest, context: Context
    ) -> pb.ProcessInstance:
        principal = current_principal()
        principal.require_any(SERVICE, "team_lead", "process_admin", action="cancelling a process instance")
        await handlers.cancel_instance(
            self._deps,
            Actor(principal.subject, principal.primary_role),
            principal.org,
            request.ticket_number,
            request.reason,
        )
        return await self._instance(principal, request.ticket_number)

    async def ResolveIncident(self, request: pb.ResolveIncidentRequest, context: Context) -> pb.ProcessInstance:
        principal = current_principal()
        _require(request, "ticket_number", "incident_id")
        principal.require_any("team_lead", "process_admin", action="resolving an incident")
        await handlers.resolve_incident(
            self._deps,
            Actor(principal.subject, principal.primary_role),
            principal.org,
            request.ticket_number,
            request.incident_id,
            tr.from_struct(request.variables),
            request.comment,
        )
        return await self._instance(principal, request.ticket_number)
