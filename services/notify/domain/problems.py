"""Collecting the problems of a configuration file while reading it, each named by its key path
the way an editor finds it: `events."ticket.resolved"[1].channel`. List entries are counted
from 1, as an admin counts them (as in the workflow's calendar files)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from services.notify.domain.errors import ConfigProblem

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key(*parts: str | int) -> str:
    """`key("events", "ticket.resolved", 1, "channel")` → `events."ticket.resolved"[1].channel`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.match(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


def child(path: str, part: str | int) -> str:
    """`child('events."ticket.resolved"', 1)` → `events."ticket.resolved"[1]`."""
    tail = key(part)
    if not path:
        return tail
    return path + tail if isinstance(part, int) else f"{path}.{tail}"


def one_of(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def suggest(value: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when `value` looks like a typo of a known name, else ``."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Problems:
    """The problems of one or more files, in the order they were found."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, file: str, path: str, message: str) -> None:
        self.items.append(ConfigProblem(file, path, message))

    def extend(self, problems: Iterable[ConfigProblem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def unknown_keys(self, file: str, path: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for name in table:
            if name not in allowed:
                self.add(
                    file, child(path, name), f"unknown key{suggest(name, allowed)} (allowed here: {', '.join(allowed)})"
                )
