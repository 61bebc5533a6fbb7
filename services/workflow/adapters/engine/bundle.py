"""Deploy-time validation and compilation of a bundle: the BPMN, DMN and calendar files a process
admin edits (bpmn/README.md), checked as a whole and parsed once into the specs the engine runs.

``compile_bundle`` reports every problem it finds at once, each naming file, element and what to
do, and raises ``BundleRejected``; warnings (things that deploy but probably do not do what the
modeller meant) travel with the compiled bundle. The stages, each only over what the previous
one let through:

1. files: count, sizes, paths (``files``) — failing here stops everything, nothing is parsed;
2. ``bundle.toml`` (``manifest``) and ``calendars/*.toml`` (``calendar_format``);
3. XML: UTF-8, no DOCTYPE, well-formed, hardened lxml, not Camunda 8, BPMN/DMN XSD (``xml_safety``);
4. our checks over every element (``bpmn_checks``, ``dmn_checks``, ``conventions``): sandboxed
   expressions, timers, FEEL, references between files, unsupported elements, SLA and four-eyes
   properties;
5. SpiffWorkflow's own parse (``SupportParser``) of every executable process; what it reports about
   an element already reported in stage 4 is dropped as a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec

from services.workflow.adapters.engine.bpmn_checks import check_bpmn
from services.workflow.adapters.engine.files import check_files, file_kind, read_bundle_dir
from services.workflow.adapters.engine.index import BundleIndex, build_index
from services.workflow.adapters.engine.manifest import Manifest, parse_manifest
from services.workflow.adapters.engine.parser import SupportParser
from services.workflow.adapters.engine.problems import BundleProblem, BundleRejected, Findings
from services.workflow.adapters.engine.xml_safety import (
    BPMN_NS,
    DMN_NAMESPACES,
    ZEEBE_MESSAGE,
    is_zeebe,
    parse_xml,
    validate_schema,
)
from services.workflow.domain.calendar import BusinessCalendar, CalendarError
from services.workflow.domain.calendar_format import parse_calendar

__all__ = ["BundleProblem", "BundleRejected", "CompiledBundle", "compile_bundle", "read_bundle_dir"]


@dataclass(frozen=True)
class CompiledBundle:
    checksum: str  # sha256 over the sorted (path, content) pairs: the deployment's identity
    name: str
    main_process: str
    default_calendar: str
    files: Mapping[str, bytes]
    process_spec: BpmnProcessSpec  # of main_process
    subprocess_specs: Mapping[str, BpmnProcessSpec]  # everything main_process may call
    calendars: Mapping[str, BusinessCalendar]  # by file name without .toml
    process_ids: tuple[str, ...]  # executable processes, sorted
    warnings: tuple[str, ...]


def compile_bundle(files: Mapping[str, bytes]) -> CompiledBundle:
    """Validate and parse a bundle; raises BundleRejected with every problem found."""
    contents = {path: bytes(content) for path, content in files.items()}
    findings = Findings()
    check_files(contents, findings)
    if findings.problems:
        raise BundleRejected(findings.problems)
    manifest = parse_manifest(contents.get("bundle.toml"), findings)
    calendars = _calendars(contents, findings)
    loaded = _load_xml(contents, findings)
    unreadable = tuple(sorted(p for p in contents if file_kind(p) in ("bpmn", "dmn") and p not in loaded))
    # References are checked against every calendar file, so a broken one is reported once, not as missing too.
    calendar_names = frozenset(PurePosixPath(p).stem for p in contents if file_kind(p) == "calendar")
    index = build_index(loaded, calendar_names, unreadable, findings)
    for path, (root, valid) in loaded.items():
        if valid and file_kind(path) == "bpmn":
            check_bpmn(path, root, index, findings)
    if manifest is not None:
        _check_manifest(manifest, index, findings)
    specs = _parse(loaded, index, manifest, findings)
    if findings.problems or manifest is None or specs is None:
        raise BundleRejected(findings.problems)
    process_spec, subprocess_specs = specs
    return CompiledBundle(
        checksum=checksum(contents),
        name=manifest.name,
        main_process=manifest.main_process,
        default_calendar=manifest.default_calendar,
        files=MappingProxyType(contents),
        process_spec=process_spec,
        subprocess_specs=MappingProxyType(subprocess_specs),
        calendars=MappingProxyType(calendars),
        process_ids=tuple(sorted(pid for pid, (_, executable) in index.processes.items() if executable)),
        warnings=tuple(str(w) for w in sorted(set(findings.warnings))),
    )


def checksum(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        encoded = path.encode()
        # Lengths first, so that no two different bundles hash the same byte stream.
        digest.update(len(encoded).to_bytes(8, "big") + encoded + len(files[path]).to_bytes(8, "big"))
        digest.update(files[path])
    return digest.hexdigest()


def _calendars(files: Mapping[str, bytes], findings: Findings) -> dict[str, BusinessCalendar]:
    calendars = {}
    for path in sorted(p for p in files if file_kind(p) == "calendar"):
        stem = PurePosixPath(path).stem
        try:
            calendar = parse_calendar(files[path].decode("utf-8-sig"), source=path)
        except UnicodeDecodeError:
            findings.problem(path, "", "not UTF-8: save the file as UTF-8")
            continue
        except CalendarError as exc:
            for message in exc.problems:
                findings.problem(path, "", message.removeprefix(f"{path}: "))
            continue
        if calendar.name != stem:
            findings.problem(
                path,
                "",
                f"name = {calendar.name!r}, but diagrams refer to this calendar by its file "
                f"name: write name = {stem!r} (or rename the file)",
            )
            continue
        calendars[stem] = calendar
    return calendars


def _load_xml(files: Mapping[str, bytes], findings: Findings) -> dict[str, tuple[Any, bool]]:
    """Each well-formed BPMN/DMN file's root, and whether it is also valid against its XSD."""
    roots = {}
    for path in sorted(files):
        kind = file_kind(path)
        if kind not in ("bpmn", "dmn"):
            continue
        root = parse_xml(path, files[path], findings)
        if root is None:
            continue
        if is_zeebe(root):
            findings.problem(path, "", ZEEBE_MESSAGE)
            continue
        name = etree.QName(root)
        expected = name.namespace == BPMN_NS if kind == "bpmn" else name.namespace in DMN_NAMESPACES
        if not expected or name.localname != "definitions":
            what = "BPMN 2.0" if kind == "bpmn" else "DMN 1.1 to 1.5"
            findings.problem(path, "", f"not a {what} file (root element {name.localname!r} in {name.namespace!r})")
            continue
        roots[path] = (root, validate_schema(path, root, findings))
    return roots


def _check_manifest(manifest: Manifest, index: BundleIndex, findings: Findings) -> None:
    main = index.processes.get(manifest.main_process)
    if main is None:
        findings.problem(
            "bundle.toml",
            "",
            f"main_process {manifest.main_process!r} is not a process in the "
            "bundle " + index.missing("processes", index.processes),
        )
    elif not main[1]:
        findings.problem(main[0], manifest.main_process, "the main process is not executable: tick Executable")
    if manifest.default_calendar not in index.calendars:
        known = ", ".join(sorted(index.calendars)) or "none"
        findings.problem(
            "bundle.toml",
            "",
            f"default_calendar {manifest.default_calendar!r}: no calendars/"
            f"{manifest.default_calendar}.toml (calendars: {known})",
        )


def _parse(
    loaded: Mapping[str, tuple[Any, bool]], index: BundleIndex, manifest: Manifest | None, findings: Findings
) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]] | None:
    """SpiffWorkflow's parse of everything; the main process's specs if nothing went wrong.

    Schema-valid files only, except that every well-formed DMN file is added (and parsed only when
    a business rule task asks for it), so that a table with a schema error is not also reported
    as missing by each task that uses it."""
    parser = SupportParser()
    for path, (root, valid) in loaded.items():
        if file_kind(path) == "dmn":
            _spiff(findings, path, parser.add_dmn_xml, root, filename=path)
        elif valid:
            _spiff(findings, path, parser.add_bpmn_xml, root, filename=path)
    for dmn_parser in list(parser.dmn_parsers.values()):
        if loaded[dmn_parser.filename][1]:
            _spiff(findings, dmn_parser.filename, dmn_parser.parse)
    for pid, (path, executable) in sorted(index.processes.items()):
        if executable and pid in parser.process_parsers:
            _spiff(findings, path, parser.get_spec, pid)
    if findings.problems or manifest is None:
        return None
    main = parser.get_spec(manifest.main_process)
    return main, dict(parser.get_subprocess_specs(manifest.main_process))


_TOO_DEEP = "too many elements in a row to parse (a few hundred at most): move steps into called processes"


def _spiff(findings: Findings, path: str, call: Any, *args: Any, **kwargs: Any) -> None:
    """Run one SpiffWorkflow parser step; its exception becomes a problem unless stage 4 already
    reported that element."""
    try:
        call(*args, **kwargs)
    except ValidationException as exc:
        file = exc.file_name or path  # some of its exceptions (a missing DMN) carry no file name
        element = str(exc.id or "")
        if not (element and findings.has_problem_at(file, element)):
            message = "; ".join([str(exc.args[0]) if exc.args else type(exc).__name__, *exc.notes])
            if message.startswith("RecursionError"):  # its parser recurses along the flow, one level per element
                message = _TOO_DEEP
            findings.problem(file, element, message)
    except RecursionError:
        findings.problem(path, "", _TOO_DEEP)
    except Exception as exc:  # SpiffWorkflow's parser raises whatever its code trips over
        if any(p.file == path for p in findings.problems):
            return  # most likely what stage 4 already reported (a business rule task without decisionRef)
        findings.problem(path, "", f"SpiffWorkflow could not parse this file: {type(exc).__name__}: {exc}")
