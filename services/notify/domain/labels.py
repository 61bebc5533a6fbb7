"""Words for the codes that travel in events (P0, resolve, tier2, satisfied…), per locale, and
how durations and times read. Used by the template filters `label`, `duration`, `seconds` and
`datetime`. A locale without its own words uses the English ones; an unknown code shows as is."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_ZH: Final[Mapping[str, Mapping[str, str]]] = {
    "priority": {"P0": "P0 紧急", "P1": "P1 高", "P2": "P2 中", "P3": "P3 低"},
    "clock": {
        "assign": "分派",
        "respond": "首次响应",
        "diagnose": "初步诊断",
        "resolve": "解决",
        "contact": "紧急联系",
        "tier2": "二线响应",
        "revisit": "回访",
    },
    "tier": {"tier1": "一线支持", "tier2": "二线支持", "expert": "专家会诊"},
    "rating": {"satisfied": "满意", "neutral": "一般", "dissatisfied": "不满意"},
    "status": {
        "pending": "待处理",
        "waiting_for_requester": "待补充信息",
        "accepted": "已受理",
        "in_progress": "处理中",
        "resolved": "已处理，待验证",
        "completed": "已完成",
        "closed": "已关闭",
        "cancelled": "已取消",
    },
    "outcome": {"completed": "已完成", "cancelled": "已取消"},
    "operation": {"data modification": "数据修改", "configuration change": "系统配置变更"},
    "info": {
        "environment.device": "设备型号",
        "environment.os": "操作系统及版本",
        "environment.software": "相关软件",
        "environment.software_version": "软件版本",
        "reproduction_steps": "复现步骤",
        "occurred_at": "问题发生时间",
        "attachment:screenshot": "截图",
        "attachment:log": "日志",
        "attachment:recording": "录屏",
        "attachment:other": "相关文件",
    },
}
_EN: Final[Mapping[str, Mapping[str, str]]] = {
    "priority": {"P0": "P0 urgent", "P1": "P1 high", "P2": "P2 medium", "P3": "P3 low"},
    "clock": {
        "assign": "assignment",
        "respond": "first response",
        "diagnose": "initial diagnosis",
        "resolve": "resolution",
        "contact": "emergency contact",
        "tier2": "tier-2 response",
        "revisit": "revisit",
    },
    "tier": {"tier1": "tier 1", "tier2": "tier 2", "expert": "expert consultation"},
    "rating": {"satisfied": "satisfied", "neutral": "neutral", "dissatisfied": "dissatisfied"},
    "status": {
        "pending": "pending",
        "waiting_for_requester": "waiting for your information",
        "accepted": "accepted",
        "in_progress": "in progress",
        "resolved": "resolved, awaiting your verification",
        "completed": "completed",
        "closed": "closed",
        "cancelled": "cancelled",
    },
    "outcome": {"completed": "completed", "cancelled": "cancelled"},
    "info": {
        "environment.device": "device model",
        "environment.os": "operating system and version",
        "environment.software": "software concerned",
        "environment.software_version": "software version",
        "reproduction_steps": "steps to reproduce",
        "occurred_at": "when the problem started",
        "attachment:screenshot": "a screenshot",
        "attachment:log": "a log file",
        "attachment:recording": "a screen recording",
        "attachment:other": "a related file",
    },
}
KINDS: Final = frozenset(_ZH)


def _words(locale: str) -> Mapping[str, Mapping[str, str]]:
    return _ZH if locale.lower().startswith("zh") else _EN


def label(code: str, kind: str, locale: str) -> str:
    """`label("P0", "priority", "zh-CN")` → "P0 紧急"."""
    if kind == "info" and code.startswith("attachment:") and "|" in code:
        # "attachment:screenshot|log" (intake's required_info): any of those kinds.
        kinds = code.removeprefix("attachment:").split("|")
        parts = [label(f"attachment:{k}", "info", locale) for k in kinds]
        return "或".join(parts) if _words(locale) is _ZH else " or ".join(parts)
    return _words(locale).get(kind, {}).get(code, code)


_DURATION = re.compile(r"^(R\d*/)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def duration(value: str, locale: str, *, business: bool = False) -> str:
    """An SLA target as people say it: "PT2H" → "2 小时" / "2 hours"; "P3D" → "3 个工作日" in a
    working-time calendar; "EOD" → "当日下班前"; "R/PT30M" → "每 30 分钟". Unparsable text shows as is."""
    zh = _words(locale) is _ZH
    if value == "EOD":
        return "当日下班前" if zh else "by the end of the working day"
    match = _DURATION.match(value or "")
    if not match or not any(match.groups()[1:]):
        return value
    repeat, days, hours, minutes, seconds = match.groups()
    parts: list[str] = []
    if days:
        n = int(days)
        if zh:
            parts.append(f"{n} 个工作日" if business else f"{n} 天")
        else:
            parts.append(_plural(n, "working day" if business else "day"))
    for amount, zh_unit, en_unit in ((hours, "小时", "hour"), (minutes, "分钟", "minute"), (seconds, "秒", "second")):
        if amount and int(amount):
            parts.append(f"{int(amount)} {zh_unit}" if zh else _plural(int(amount), en_unit))
    text = " ".join(parts)
    if repeat:
        return f"每 {text}" if zh else f"every {text}"
    return text


def seconds(value: int, locale: str) -> str:
    """Remaining time in whole minutes (at least 1): 750 → "13 分钟" / "13 minutes"; hours above 90 min."""
    minutes = max(1, round(int(value) / 60))
    zh = _words(locale) is _ZH
    if minutes > 90:
        hours, rest = divmod(minutes, 60)
        if zh:
            return f"{hours} 小时 {rest} 分钟" if rest else f"{hours} 小时"
        return f"{_plural(hours, 'hour')} {_plural(rest, 'minute')}" if rest else _plural(hours, "hour")
    return f"{minutes} 分钟" if zh else _plural(minutes, "minute")


def moment(value: datetime, locale: str, time_zone: str) -> str:
    """An instant in the reader's time zone: "2023年10月27日 14:30" (with the offset outside
    UTC+8), or "2023-10-27 14:30 UTC+08:00"."""
    local = value.astimezone(ZoneInfo(time_zone))
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    h, m = divmod(int(abs(offset).total_seconds()) // 60, 60)
    zone = f"UTC{sign}{h:02d}:{m:02d}"
    if _words(locale) is _ZH:
        text = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        return text if zone == "UTC+08:00" else f"{text}（{zone}）"
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
