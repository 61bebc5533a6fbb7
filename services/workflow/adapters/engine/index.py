"""Ids and names across a bundle, collected before any file is checked, so that each file's
checks can resolve references into the others (called processes, decisions, calendars, SLA
clocks, messages). DMN files are checked while they are indexed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]

from services.workflow.adapters.engine import conventions as conv
from services.workflow.adapters.engine.dmn_checks import check_dmn
from services.workflow.adapters.engine.files import file_kind
from services.workflow.adapters.engine.problems import Findings
from services.workflow.adapters.engine.xml_safety import BPMN_NS, CAMUNDA_NS

THROW_EVENTS: Final = ("intermediateThrowEvent", "endEvent")


@dataclass(frozen=True)
class BundleIndex:
    """What one file's checks need to know about the rest of the bundle."""

    processes: Mapping[str, tuple[str, bool]]  # process id → (file, executable)
    decisions: Mapping[str, str]  # decision id → file
    calendars: frozenset[str]
    clocks: frozenset[str]  # clocks some sla.start starts
    thrown: frozenset[str] = frozenset()  # message names some throw event throws
    caught: frozenset[str] = frozenset()  # message names some catch event waits for
    unreadable: tuple[str, ...] = ()  # .bpmn/.dmn files that are not well-formed: their ids are unknown

    def missing(self, what: str, known: Iterable[str]) -> str:
        """The tail of a "not found" message: what there is, and where else it might have been."""
        text = f"({what}: {', '.join(sorted(known)) or 'none'})"
        if self.unreadable:
            text += f"; it may be in {', '.join(self.unreadable)}, which could not be read"
        return text


def started_clocks(root: Any) -> set[str]:
    clocks: set[str] = set()
    for prop in root.iter(f"{{{CAMUNDA_NS}}}property"):
        if prop.get("name") == conv.SLA_START:
            clocks.update(start.clock for start in conv.parse_sla_start(prop.get("value") or "")[0])
    return clocks


def message_names(root: Any) -> tuple[set[str], set[str]]:
    """The names of the messages thrown and caught in one file (within an instance, a thrown
    message reaches catch events of the same name: main process, called processes, subprocesses)."""
    names = {m.get("id"): m.get("name") for m in root.iter(f"{{{BPMN_NS}}}message")}
    thrown: set[str] = set()
    caught: set[str] = set()
    for definition in root.iter(f"{{{BPMN_NS}}}messageEventDefinition"):
        name = names.get(definition.get("messageRef"))
        if name:
            (thrown if local_name(definition.getparent()) in THROW_EVENTS else caught).add(name)
    return thrown, caught


def build_index(
    roots: Mapping[str, tuple[Any, bool]], calendars: frozenset[str], unreadable: tuple[str, ...], findings: Findings
) -> BundleIndex:
    """Ids across the bundle; from every well-formed file, so that a reference into a file with
    schema errors is not also reported as missing. DMN files are checked here too."""
    processes: dict[str, tuple[str, bool]] = {}
    decisions: dict[str, str] = {}
    clocks: set[str] = set()
    thrown: set[str] = set()
    caught: set[str] = set()
    for path, (root, valid) in roots.items():
        if file_kind(path) == "dmn":
            ns = etree.QName(root).namespace
            ids = (
                check_dmn(path, root, calendars, findings)
                if valid
                else [str(d.get("id")) for d in root.findall(f"{{{ns}}}decision")[:1]]
            )
            for decision_id in ids:
                if decision_id in decisions:
                    findings.problem(
                        path, decision_id, f"decision id {decision_id!r} is also used in {decisions[decision_id]}"
                    )
                decisions.setdefault(decision_id, path)
            continue
        clocks |= started_clocks(root)
        throws, catches = message_names(root)
        thrown |= throws
        caught |= catches
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            pid = process.get("id") or ""
            if pid in processes:
                findings.problem(path, pid, f"process id {pid!r} is also used in {processes[pid][0]}")
                continue
            processes[pid] = (path, process.get("isExecutable", "true") == "true")
    return BundleIndex(
        processes, decisions, calendars, frozenset(clocks), frozenset(thrown), frozenset(caught), unreadable
    )


def local_name(element: Any) -> str:
    return str(etree.QName(element).localname) if isinstance(element.tag, str) else ""
