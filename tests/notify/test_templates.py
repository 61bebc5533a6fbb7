"""The shipped templates as readers get them (both locales, every notice, real events) with the
SOP's wording, and the template engine's guard rails: a template that breaks is refused when it
is deployed, or — when the data breaks it — fails with its file and line; the sandbox holds."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.notify.domain.errors import TemplateError, TemplateSetError
from services.notify.domain.planning import PlannedNotice, plan
from services.notify.domain.templates import RenderedMessage, load_template_set, render, text_to_html
from services.notify.domain.ticket_context import TicketContext, apply
from tests.notify.story import NUMBER, TITLE, classified, envelope, lifecycle, shipped, submitted

LOCALES = ("zh-CN", "en")
SUBJECTS = {"zh-CN": f"【技术支持】{NUMBER}号 {TITLE}", "en": f"[Support] {NUMBER} {TITLE}"}


def planned_story() -> Iterator[tuple[PlannedNotice, TicketContext]]:
    """Every notice the shipped rules plan over a ticket's life, plus a P0 classification (team
    robot) and a corrected priority (reclassified)."""
    cfg = shipped()
    ctx: TicketContext | None = None
    events = list(lifecycle())
    first_classification = events[1]
    extra = [
        classified(types_pb2.PRIORITY_P2, minutes=47),
        classified(types_pb2.PRIORITY_P0, minutes=48),
    ]
    for event in [*events[:2], *extra, *events[2:]]:
        ctx = apply(ctx, event)
        if event.type == "ticket.classified":
            assert ctx.first_classification_id == first_classification.event_id
        for notice in plan(event, ctx, cfg.rules, cfg.directory):
            yield notice, ctx


@pytest.fixture(scope="module")
def story_notices() -> list[tuple[PlannedNotice, TicketContext]]:
    return list(planned_story())


def rendered(notice: PlannedNotice, locale: str) -> RenderedMessage:
    return render(shipped().templates, notice.template, locale, notice.variables)


def test_every_shipped_template_renders_in_both_locales_with_the_sop_subject(
    story_notices: list[tuple[PlannedNotice, TicketContext]],
) -> None:
    used = set()
    for notice, _ in story_notices:
        used.add(notice.template)
        for locale in LOCALES:
            message = rendered(notice, locale)
            where = f"{notice.template}.{locale} for {notice.event_type} to {notice.recipient}"
            assert message.locale == locale, where
            assert message.subject == SUBJECTS[locale], where
            for part in (message.text, message.html):
                assert NUMBER in part, where
                assert not re.search(r"None|\{\{|\{%|Undefined", part), where
            assert message.html.startswith("<!DOCTYPE html>"), where
            # Nothing of the other language leaks in (the ticket's own title aside).
            body = message.text.replace(TITLE, "")
            # The template's own words are in the reader's language (the content may be Chinese).
            assert ("服务单" in body) == (locale == "zh-CN"), (where, message.text)
    assert used == set(shipped().templates.catalog), "a shipped template no rule of the story reaches"


def test_the_result_notice_uses_the_sop_wording(story_notices: list[tuple[PlannedNotice, TicketContext]]) -> None:
    notice = next(n for n, _ in story_notices if n.template == "result_notice" and n.channel == "email")
    zh = rendered(notice, "zh-CN")
    opening = f"您好，您提交的{NUMBER}号服务单已处理完成，"
    closing = "请登录测试。如仍有问题，请及时联系我们"
    assert zh.text.startswith(opening)
    assert closing in zh.text
    assert "问题原因：10 月 3 日订单 SO-1003 的金额字段为空，导致报表汇总失败。" in zh.text
    assert "处理措施：补录了该订单金额并重建了 10 月报表缓存。" in zh.text
    assert zh.text.index(opening) < zh.text.index("问题原因") < zh.text.index(closing)
    assert opening in zh.html
    assert closing in zh.html
    en = rendered(notice, "en")
    assert en.text.startswith(f"Hello, your ticket {NUMBER} has been resolved.")
    assert "Please sign in and test it. If the problem persists, please contact us promptly." in en.text


def test_the_receipt_gives_the_number_and_the_expected_response_time() -> None:
    cfg = shipped()
    for priority, zh_line, en_line in (
        (
            types_pb2.PRIORITY_P1,
            "预计响应时间：2 小时内（工作时间）",
            "Expected response: within 2 hours (working hours)",
        ),
        (types_pb2.PRIORITY_P0, "预计响应时间：30 分钟内（7×24 小时）", "Expected response: within 30 minutes (24×7)"),
        (
            types_pb2.PRIORITY_P2,
            "预计响应时间：4 小时内（工作时间）",
            "Expected response: within 4 hours (working hours)",
        ),
    ):
        ctx = apply(None, submitted())
        event = classified(priority)
        ctx = apply(ctx, event)
        (notice,) = [n for n in plan(event, ctx, cfg.rules, cfg.directory) if n.channel == "email"]
        assert notice.template == "receipt"
        zh, en = rendered(notice, "zh-CN"), rendered(notice, "en")
        assert f"服务单号：{NUMBER}" in zh.text
        assert zh_line in zh.text
        assert f"Ticket number: {NUMBER}" in en.text
        assert en_line in en.text


def test_p0_receipt_promises_the_emergency_contact() -> None:
    cfg = shipped()
    ctx = apply(None, submitted())
    event = classified(types_pb2.PRIORITY_P0)
    ctx = apply(ctx, event)
    (notice,) = [n for n in plan(event, ctx, cfg.rules, cfg.directory) if n.channel == "email"]
    text = rendered(notice, "zh-CN").text
    assert "紧急服务单：工程师将在 15 分钟内与您联系，并每 30 分钟通报一次进展。" in text
    assert "解决时限：4 小时内" in text


def test_a_missing_locale_falls_back_to_the_same_language_then_zh_cn() -> None:
    ts = shipped().templates
    variables = next(n for n, _ in planned_story() if n.template == "closure").variables
    assert render(ts, "closure", "en-US", variables).locale == "en"
    assert render(ts, "closure", "fr", variables).locale == "zh-CN"
    assert render(ts, "closure", "fr", variables).subject == SUBJECTS["zh-CN"]
    assert ts.locale_for("no_such_template", "zh-CN") is None
    with pytest.raises(TemplateError, match=r"templates/no_such\.zh-CN\.txt\.j2: no such template"):
        render(ts, "no_such", "zh-CN", variables)


# -- a small template set for the guard rails -----------------------------------------------------------

BASE = {
    "_subject.zh-CN.subject.j2": "【技术支持】{{ ticket.number }}号 {{ ticket.title }}",
    "_layout.zh-CN.html.j2": "<html>{{ body }}</html>",
}


def load_problems(files: dict[str, bytes]) -> list[str]:
    with pytest.raises(TemplateSetError) as caught:
        load_template_set(files)
    return [str(p) for p in caught.value.problems]


VARS = {
    "ticket": {"number": NUMBER, "title": "打印机<坏了>\r\nBcc: evil@example.com", "sla_targets": {"respond": "PT2H"}},
    "event": {"cause": "a & b"},
    "recipient": {"name": "李雷"},
}


def test_html_is_escaped_text_is_not_and_the_subject_is_one_line() -> None:
    ts = load_template_set(
        {
            **{k: v.encode() for k, v in BASE.items()},
            "n.zh-CN.txt.j2": "原因：{{ event.cause }}\n标题：{{ ticket.title }}\n".encode(),
        }
    )
    message = render(ts, "n", "zh-CN", VARS)
    assert message.subject == f"【技术支持】{NUMBER}号 打印机<坏了> Bcc: evil@example.com"
    assert "原因：a & b" in message.text
    assert "原因：a &amp; b" in message.html
    assert "打印机&lt;坏了&gt;" in message.html
    assert "<坏了>" not in message.html


def test_text_becomes_paragraphs_lists_and_links_in_html() -> None:
    html = text_to_html("您好：\n第二行\n\n- 截图\n- 日志\n\n1. 备份\n2. 更新\n\n详情 https://x.example/t/1?a=1&b=2 见")
    assert html == (
        "<p>您好：<br>\n第二行</p>\n<ul><li>截图</li><li>日志</li></ul>\n<ol><li>备份</li><li>更新</li></ol>\n"
        '<p>详情 <a href="https://x.example/t/1?a=1&amp;b=2">https://x.example/t/1?a=1&amp;b=2</a> 见</p>'
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__ }}", "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe."),
        ("{{ event.__class__.__mro__ }}", "not allowed in a template: access to attribute '__class__' of 'dict'"),
        (
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "not allowed in a template: access to attribute '__class__'",
        ),
        ("{{ lipsum.__globals__ }}", "not allowed in a template: access to attribute '__globals__'"),
        ("{{ '{0.__class__}'.format(ticket) }}", "not allowed in a template: access to attribute '__class__'"),
        (
            "{{ ticket.sla_targets.update({'respond': 'P9D'}) }}",
            "not allowed in a template: access to attribute 'update'",
        ),
        ("{{ 'x' * 10000000 }}", "not allowed in a template: repetition would build 10,000,000 items"),
        ("{{ 2 ** 100000 }}", "not allowed in a template: exponent 100000 is too large"),
        ("{{ range(100000000) | list }}", "OverflowError: Range too big"),
        ("{{ event.nonexistent }}", "undefined: 'dict object' has no attribute 'nonexistent'"),
    ],
)
def test_a_template_that_breaks_while_rendering_names_file_line_and_reason(source: str, reason: str) -> None:
    ts = load_template_set(
        {**{k: v.encode() for k, v in BASE.items()}, "evil.zh-CN.txt.j2": f"第一行\n{source}\n".encode()}
    )
    with pytest.raises(TemplateError) as caught:
        render(ts, "evil", "zh-CN", VARS)
    assert (caught.value.file, caught.value.line) == ("templates/evil.zh-CN.txt.j2", 2)
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert str(caught.value).startswith("templates/evil.zh-CN.txt.j2, line 2: ")


def test_a_failure_inside_an_included_file_names_that_file() -> None:
    ts = load_template_set(
        {
            **{k: v.encode() for k, v in BASE.items()},
            "_part.zh-CN.txt.j2": b"ok\n\n{{ event.missing }}",
            "n.zh-CN.txt.j2": b'top\n{% include "_part.zh-CN.txt.j2" %}\n',
        }
    )
    with pytest.raises(TemplateError) as caught:
        render(ts, "n", "zh-CN", VARS)
    assert (caught.value.file, caught.value.line) == ("templates/_part.zh-CN.txt.j2", 3)


def test_broken_template_files_are_refused_at_load_with_every_problem() -> None:
    files = {k: v.encode() for k, v in BASE.items()}
    files |= {
        "ok.zh-CN.txt.j2": b"{{ ticket.number }}",
        "syntax.zh-CN.txt.j2": b"line 1\n{% if ticket.number %}\nno end\n",
        "typo.zh-CN.txt.j2": b"\n\n{{ tikcet.number }} {{ secret }}",
        "field.zh-CN.txt.j2": b"{% for x in event.items %}{% endfor %}\n{{ recipient.nmae }}",
        "incl.zh-CN.txt.j2": b'{% include "_footer.zh-CN.txt.j2" %}{% include event.template %}',
        "Receipt.zh-CN.txt.j2": b"bad name",
        "only_en.en.txt.j2": b"hello",
        "orphan.zh-CN.html.j2": b"<p>{{ subject }}</p>",
        "latin.zh-CN.txt.j2": "caf\u00e9".encode("latin-1"),
        "html_vars.zh-CN.txt.j2": b"{{ body }}",
        "dunder.zh-CN.txt.j2": b"{{ ticket.__class__ }}",
    }
    assert load_problems(files) == [
        "templates/Receipt.zh-CN.txt.j2: not a template file name: <name>.<locale>.<subject|txt|html>.j2,"
        " e.g. receipt.zh-CN.txt.j2",
        "templates/latin.zh-CN.txt.j2: not UTF-8: save the file as UTF-8",
        "templates/dunder.zh-CN.txt.j2: line 1: 'ticket' has no field '__class__' (it has: assignee, assignee_name,"
        " business_time, calendar, category, cause, co_handler_names, expected_response, last_agent_comment,"
        " measures, number, priority, problem_type, rating, requester_id, requester_name, sla_targets, status,"
        " submitted_at, summary, task_due_at, task_name, team, tier, title, url, vip)",
        "templates/field.zh-CN.txt.j2: line 2: 'recipient' has no field 'nmae' (did you mean 'name'?)"
        " (it has: address, channel, kind, name)",
        "templates/html_vars.zh-CN.txt.j2: line 1: unknown variable 'body' (templates see: actor, event, event_id,"
        " event_type, locale, names, occurred_at, org, recipient, ticket, time_zone)",
        "templates/incl.zh-CN.txt.j2: uses '_footer.zh-CN.txt.j2', which is not a template file",
        "templates/incl.zh-CN.txt.j2: include, import and extends need a literal file name",
        "templates/syntax.zh-CN.txt.j2: line 3: Unexpected end of template. Jinja was looking for the following"
        " tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
        "templates/typo.zh-CN.txt.j2: line 3: unknown variable 'secret' (templates see: actor, event, event_id,"
        " event_type, locale, names, occurred_at, org, recipient, ticket, time_zone)",
        "templates/typo.zh-CN.txt.j2: line 3: unknown variable 'tikcet' (did you mean 'ticket'?) (templates see:"
        " actor, event, event_id, event_type, locale, names, occurred_at, org, recipient, ticket, time_zone)",
        "templates/orphan.zh-CN.html.j2: there is no orphan.zh-CN.txt.j2 to go with it",
        "templates/only_en.zh-CN.txt.j2: missing: every template needs a zh-CN version, used when a reader's"
        " locale has none (has: en)",
    ]


def test_the_shared_subject_and_layout_are_required() -> None:
    assert load_problems({"n.zh-CN.txt.j2": b"x"}) == [
        "templates/_subject.zh-CN.subject.j2: missing: the shared default every notice uses",
        "templates/_layout.zh-CN.html.j2: missing: the shared default every notice uses",
    ]


def test_every_shipped_template_exists_in_zh_cn_and_en() -> None:
    catalog = shipped().templates.catalog
    assert len(catalog) == 20
    assert {name: set(locales) for name, locales in catalog.items()} == {name: set(LOCALES) for name in catalog}


def test_globex_gets_english_and_acme_chinese_for_the_same_event() -> None:
    cfg = shipped()
    for org, subject in (("acme", SUBJECTS["zh-CN"]), ("globex", SUBJECTS["en"])):
        ctx = apply(None, submitted(org=org))
        event = envelope(events_pb2.TicketResolved(resolved_by="x", cause="c", measures="m"), org=org)
        ctx = apply(ctx, event)
        email, in_app = plan(event, ctx, cfg.rules, cfg.directory)
        assert (email.channel, in_app.channel) == ("email", "in_app")
        message = render(cfg.templates_for(org), email.template, email.locale, email.variables)
        assert message.subject == subject
