"""``bundle.toml``: the bundle's name, its main process and its default calendar. For example::

name = "default"
main_process = "support_ticket"
default_calendar = "cn-workdays"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Final

from services.workflow.adapters.engine.files import MANIFEST
from services.workflow.adapters.engine.problems import Findings

_KEYS: Final = {
    "name": 'a name for the bundle, e.g. "default"',
    "main_process": 'the id of the process each ticket starts, e.g. "support_ticket"',
    "default_calendar": 'a calendar file name without .toml, e.g. "cn-workdays"',
}


@dataclass(frozen=True)
class Manifest:
    name: str
    main_process: str
    default_calendar: str


def parse_manifest(content: bytes | None, findings: Findings) -> Manifest | None:
    if content is None:
        findings.problem(MANIFEST, "", "missing: add bundle.toml with name, main_process and default_calendar")
        return None
    try:
        data = tomllib.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError:
        findings.problem(MANIFEST, "", "not UTF-8: save the file as UTF-8")
        return None
    except tomllib.TOMLDecodeError as exc:
        findings.problem(MANIFEST, "", f"not valid TOML: {exc}")
        return None
    values = {}
    for key, meaning in _KEYS.items():
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            findings.problem(MANIFEST, "", f"{key}: required, {meaning}")
        else:
            values[key] = value.strip()
    for key in sorted(set(data) - set(_KEYS)):
        findings.warning(MANIFEST, "", f"{key}: unknown key, ignored (keys: {', '.join(_KEYS)})")
    if len(values) < len(_KEYS):
        return None
    return Manifest(**values)
