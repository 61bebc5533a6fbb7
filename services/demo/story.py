"""The support process of SOP §1 as the demo plays it on the default bundle (bpmn/): one ticket of
ACME's 李雷, whose monthly report export fails, from submission with missing information to the
closing after a dissatisfied rating and a revisit. `STEPS` in SOP order; the task ids and form
fields are those of bpmn/*.bpmn."""

from __future__ import annotations

from typing import Final

from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2
from supportflow.workflow.v1 import workflow_pb2

from services.demo.cast import AGENT, CHANGE_MANAGER, ENGINEER, LEAD, REQUESTER
from services.demo.ticket import Run, Step, request_id

TITLE: Final = "ERP 月度报表导出失败"
#: A 1×1 PNG: the screenshot the requester adds later.
SCREENSHOT: Final = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2b3c6d60000000049454e44ae426082"
)
CHANGE: Final = {
    "change_type": "version_upgrade",
    "steps": "备份报表库\n发布报表服务 8.2.2\n重新生成 10 月报表",
    "risk": "报表服务重启，约 1 分钟不可用",
    "risk_level": "medium",
    "backup_plan": "报表库快照",
    "rollback_plan": "回退到 8.2.1 并恢复快照",
    "major": False,
}


# -- the steps, in SOP order ----------------------------------------------------------------------


def submit(run: Run) -> None:
    desk = run.desk
    response = desk.call(
        "intake",
        desk.intake.SubmitTicket,
        intake_pb2.SubmitTicketRequest(
            request_id=request_id(),
            organization=desk.org,
            title=TITLE if run.sequence == 1 else f"{TITLE}（{run.sequence}）",
            requester=types_pb2.Requester(name=REQUESTER.name, department="财务部", company="ACME"),
            contact=types_pb2.Contact(email="li.lei@acme.example", phone="13800000000"),
            channel="portal",
            problem_type="software_function",
            impact_scope="single_user",
            urgency="medium",
            description="导出 10 月销售报表时提示“数据异常”，导出的文件是空的。财务部月结需要这份报表。",
            environment=types_pb2.Environment(os="Windows 11 23H2", software="ERP 客户端"),
        ),
        REQUESTER,
    )
    ticket = response.ticket
    run.number = ticket.ticket_number
    status = types_pb2.TicketStatus.Name(ticket.status).removeprefix("TICKET_STATUS_")
    more = [f"status {status}; missing: {', '.join(ticket.missing_info)}"]
    if ticket.related_ticket_numbers:
        more.append(f"linked to the requester's earlier tickets: {', '.join(ticket.related_ticket_numbers)}")
    run.requester(f"submits {ticket.ticket_number} 「{ticket.title}」 via the portal", ticket, *more)


def settle_submitted(run: Run) -> None:
    run.task("Task_ObtainMissingInfo")
    run.desk.status(run.number, types_pb2.TICKET_STATUS_WAITING_FOR_REQUESTER)
    run.report()
    run.timeline.note("no assignment and no assignment clock until the information is there")


def supplement(run: Run) -> None:
    desk = run.desk
    ticket = desk.call(
        "intake",
        desk.intake.SupplementTicket,
        intake_pb2.SupplementTicketRequest(
            ticket_number=run.number,
            request_id=request_id(),
            additional_description="附上报错截图；客户端版本 8.2.1。",
            environment=types_pb2.Environment(software_version="8.2.1"),
            attachments=[
                types_pb2.AttachmentUpload(
                    file_name="导出报错.png", content_type="image/png", content=SCREENSHOT, kind="screenshot"
                )
            ],
        ),
        REQUESTER,
    )
    missing = ", ".join(ticket.missing_info) or "nothing"
    run.requester("adds a screenshot and the software version (SupplementTicket)", ticket, f"missing now: {missing}")


def settle_supplemented(run: Run) -> None:
    run.task("Task_AssignTicket")
    run.report()


def show_classification(run: Run) -> None:
    instance = run.desk.until_instance(run.number, "the workflow's routing decision", lambda i: i.HasField("routing"))
    classified = next((h for h in instance.history if h.action == "ticket.classified"), None)
    at = classified.at if classified is not None else None
    run.timeline.act(at, "workflow", "classified the ticket as it was submitted:")
    run.timeline.routing(instance.routing)


def nothing(run: Run) -> None:
    pass


def assign(run: Run) -> None:
    run.claim(ENGINEER, "Task_AssignTicket")
    run.complete(
        ENGINEER,
        "Task_AssignTicket",
        "main handler 王芳 (agent-1), priority P2 kept",
        assignee=AGENT.subject,
        priority="P2",
    )


def settle_assigned(run: Run) -> None:
    run.task("Task_Diagnose")
    run.desk.status(run.number, types_pb2.TICKET_STATUS_ACCEPTED)
    run.report()


def escalate(run: Run) -> None:
    run.complete(
        AGENT,
        "Task_Diagnose",
        "first response given; the report query needs a code fix → escalate",
        first_response="已收到，正在排查导出失败的原因",
        diagnosis="导出作业在汇总退款时中断，需要修改报表查询",
        cause_class="functional",
        escalate=True,
    )
    run.complete(
        AGENT,
        "Task_FileEscalationForm",
        "problem, impact, what was tried, why, suggested team",
        problem_description="10 月销售报表导出为空",
        impact="财务部无法完成月结",
        solutions_tried="清除客户端缓存：无效\n重新运行导出作业：同样为空",
        reason="需要修复报表查询代码",
        suggested_team="development",
    )


def settle_escalated(run: Run) -> None:
    run.task("Task_Tier2Respond")
    run.report()


def tier2(run: Run) -> None:
    run.claim(ENGINEER, "Task_Tier2Respond")
    run.complete(
        ENGINEER,
        "Task_Tier2Respond",
        "takes over as handler; a workaround for finance",
        assignee=ENGINEER.subject,
        tier2_response="已接手，正在定位根因",
        workaround_applied=True,
        workaround="先由开发导出 CSV 给财务部",
    )
    run.complete(
        ENGINEER,
        "Task_Tier2Investigate",
        "a refund with an empty amount breaks the totals",
        root_cause="10 月 3 日一条退款记录金额为空，汇总查询因此中断",
        cause_class="data",
        spans_several_modules=False,
    )


def settle_tier2(run: Run) -> None:
    run.task("Task_PlanSolution")
    run.report()


def plan(run: Run) -> None:
    run.complete(
        ENGINEER,
        "Task_PlanSolution",
        "release 8.2.2 (a production change) and repair the record",
        solution_plan="修正报表汇总查询（8.2.2）并补录空金额记录",
        production_change=True,
        key_operation=True,
    )
    run.complete(ENGINEER, "Task_PlanChange", "steps, risk, backup and rollback plan", **CHANGE)


def settle_planned(run: Run) -> None:
    run.task("Task_ApproveChange")
    run.report()


def reject(run: Run) -> None:
    run.refused(
        ENGINEER.wearing("change_manager"),
        "Task_ApproveChange",
        "also holds change approval rights and tries to approve his own plan",
        approved=True,
    )
    run.complete(
        CHANGE_MANAGER,
        "Task_ApproveChange",
        "REJECTED — no release window named",
        approved=False,
        comment="Name a release window outside month-end hours",
    )


def settle_rejected(run: Run) -> None:
    run.task("Task_PlanChange")
    run.report()


def approve(run: Run) -> None:
    run.complete(
        ENGINEER,
        "Task_PlanChange",
        "reworked: release in the evening window",
        **CHANGE,
        planned_window="周一 19:00–19:15",
    )
    run.complete(
        CHANGE_MANAGER,
        "Task_ApproveChange",
        "APPROVED",
        approved=True,
        comment="Approved for the evening window",
    )
    run.complete(
        ENGINEER,
        "Task_ConfirmPlanWithRequester",
        "李雷 agrees to the evening release",
        requester_confirmed=True,
        requester_comment="同意晚间发布",
    )


def settle_approved(run: Run) -> None:
    run.task("Task_PerformKeyOperation")
    run.report()


def dual_review(run: Run) -> None:
    run.complete(
        ENGINEER,
        "Task_PerformKeyOperation",
        "repairs the record (a data modification)",
        operation_type="data_modification",
        operation="UPDATE refunds SET amount = 0 WHERE id = 10031 AND amount IS NULL",
        operation_result="1 行已更新",
        backup_reference="snapshot-report-db",
    )
    run.refused(
        ENGINEER.wearing("reviewer"),
        "Task_ReviewKeyOperation",
        "also holds reviewer rights and tries to confirm his own operation",
        approved=True,
    )
    run.complete(
        LEAD,
        "Task_ReviewKeyOperation",
        "confirmed by a second person",
        approved=True,
        comment="核对无误",
    )


def settle_reviewed(run: Run) -> None:
    run.task("Task_VerifyInternally")
    run.report()


def verify_internally(run: Run) -> None:
    run.complete(
        AGENT,
        "Task_VerifyInternally",
        "reproduced in the test environment: fixed",
        internal_verification_passed=True,
        verification_evidence="测试环境重新导出 10 月报表，数据完整",
        cause="退款记录金额为空导致汇总查询中断",
        measures="修正汇总查询（8.2.2）并补录空金额记录",
    )


def settle_resolved(run: Run) -> None:
    run.desk.status(run.number, types_pb2.TICKET_STATUS_RESOLVED)
    run.report()


def confirm(run: Run) -> None:
    desk = run.desk
    ticket = desk.call(
        "intake",
        desk.intake.ConfirmResolution,
        intake_pb2.ConfirmResolutionRequest(
            ticket_number=run.number, request_id=request_id(), accepted=True, comment="可以导出了"
        ),
        REQUESTER,
    )
    run.requester("confirms the fix in production (ConfirmResolution)", ticket)


def settle_confirmed(run: Run) -> None:
    run.desk.until_instance(
        run.number,
        "the workflow to send the satisfaction survey",
        lambda i: any(h.action == "ticket.survey_requested" for h in i.history),
    )
    run.report()


def rate(run: Run) -> None:
    desk = run.desk
    ticket = desk.call(
        "intake",
        desk.intake.RateTicket,
        intake_pb2.RateTicketRequest(
            ticket_number=run.number,
            request_id=request_id(),
            rating=types_pb2.RATING_DISSATISFIED,
            comment="处理时间太长，月结被耽误了",
        ),
        REQUESTER,
    )
    run.requester("rates the ticket DISSATISFIED (RateTicket): “处理时间太长，月结被耽误了”", ticket)


def settle_rated(run: Run) -> None:
    run.task("Task_Revisit")
    run.desk.status(run.number, types_pb2.TICKET_STATUS_IN_PROGRESS)
    run.report()


def revisit(run: Run) -> None:
    run.complete(
        LEAD,
        "Task_Revisit",
        "called 李雷, apologised, explained cause and measures",
        revisit_notes="已致电李雷致歉，说明原因和改进措施",
        revisit_outcome="concern_resolved",
    )


def settle_revisited(run: Run) -> None:
    run.task("Task_CloseTicket")
    run.report()


def close(run: Run) -> None:
    run.complete(
        ENGINEER,
        "Task_CloseTicket",
        "summary written; proposed for the knowledge base",
        closing_summary="报表查询已修复并验证，用户已确认",
        kb_candidate=True,
        kb_keywords="报表导出,退款,空金额",
    )


def settle_closed(run: Run) -> None:
    run.desk.until_instance(
        run.number, "the process to complete", lambda i: i.state == workflow_pb2.INSTANCE_STATE_COMPLETED
    )
    run.desk.status(run.number, types_pb2.TICKET_STATUS_CLOSED)
    run.report()


STEPS: Final = (
    Step("submit", "提交 Submission, without a screenshot and the software version (SOP §2)", submit, settle_submitted),
    Step("supplement", "补充 The requester supplies what was missing", supplement, settle_supplemented),
    Step(
        "classification",
        "分类 Classification and routing: what the DMN tables decided (SOP §3, §4)",
        show_classification,
        nothing,
    ),
    Step("assign", "分派 Assignment: the development team names the handler (SOP §4)", assign, settle_assigned),
    Step(
        "escalate", "升级 Tier 1 diagnoses and escalates with the escalation form (SOP §6)", escalate, settle_escalated
    ),
    Step("tier2", "二线 Tier 2 responds and finds the root cause", tier2, settle_tier2),
    Step("plan", "方案 The fix changes production: a change plan (SOP §7)", plan, settle_planned),
    Step("reject", "变更审批 Change approval: rejected (the approver is never the author)", reject, settle_rejected),
    Step("approve", "返工 Reworked, approved, and agreed with the requester", approve, settle_approved),
    Step("dual-review", "双人复核 The data repair, checked by a second person (SOP §8)", dual_review, settle_reviewed),
    Step(
        "verify-internally",
        "内部验证 Internal verification and result notice (SOP §9)",
        verify_internally,
        settle_resolved,
    ),
    Step("user-verification", "用户验证 The requester confirms the fix in production", confirm, settle_confirmed),
    Step("rating", "满意度 The requester is dissatisfied", rate, settle_rated),
    Step("revisit", "回访 The team lead calls back (within 12 working hours)", revisit, settle_revisited),
    Step("close", "结单 Closing and archiving", close, settle_closed),
)
