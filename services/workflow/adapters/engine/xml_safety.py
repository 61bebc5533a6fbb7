"""Reading a bundle's XML without trusting it.

Diagrams come from process admins' machines and the deploy API; the XML parser must not expand
entities (billion laughs), fetch anything (XXE, external DTDs), or build huge trees. Files must be
UTF-8 (what Camunda Modeler writes) so that a DOCTYPE can be found by looking at the text before
any parser runs; a DOCTYPE is refused outright: BPMN and DMN never need one. lxml then parses with
entity resolution, DTD loading and network access off and libxml2's size limits on.

SpiffWorkflow's parser takes the resulting trees (``add_bpmn_xml`` / ``add_dmn_xml``); it is never
given bytes or file names to open itself.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS

from services.workflow.adapters.engine.problems import Findings

BPMN_NS: Final = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS: Final = "http://camunda.org/schema/1.0/bpmn"
ZEEBE_NS: Final = "http://camunda.org/schema/zeebe/1.0"
MODELER_NS: Final = "http://camunda.org/schema/modeler/1.0"
DMN_NAMESPACES: Final = frozenset(DMN_SCHEMAS) | {
    "https://www.omg.org/spec/DMN/20211108/MODEL/",  # DMN 1.4
    "https://www.omg.org/spec/DMN/20230324/MODEL/",  # DMN 1.5
}
NSMAP: Final = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
#: More elements than any hand-drawn diagram has; bounds SpiffWorkflow's recursive parse.
MAX_ELEMENTS: Final = 20_000

ZEEBE_MESSAGE: Final = "Camunda 8 (Zeebe) diagrams are not supported; export for Camunda Platform 7"
_DECLARATION = re.compile(r"<!(DOCTYPE|ENTITY)\b")
_ROOT_START = re.compile(r"<[A-Za-z_]")
_NAMESPACE = re.compile(r"\{([^}]*)\}")
_PREFIXES: Final = {BPMN_NS: "bpmn:", CAMUNDA_NS: "camunda:", **{ns: "dmn:" for ns in DMN_NAMESPACES}}
_schema_lock = threading.Lock()


def parse_xml(path: str, content: bytes, findings: Findings) -> Any | None:
    """The root element of a file, or None with the reasons in ``findings``."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        findings.problem(path, "", f"not UTF-8 (byte {exc.start}): save the file as UTF-8")
        return None
    root_start = _ROOT_START.search(text)  # a DOCTYPE can only come before the root element
    declaration = _DECLARATION.search(text, 0, root_start.start() if root_start else len(text))
    if declaration:
        line = text.count("\n", 0, declaration.start()) + 1
        findings.problem(
            path, "", f"line {line}: <!{declaration.group(1)}> declarations are not allowed in diagrams: remove it"
        )
        return None
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        findings.problem(path, "", f"line {line}, column {column}: not well-formed XML: {exc.msg}")
        return None
    if root.getroottree().docinfo.doctype:  # the text check above should make this unreachable
        findings.problem(path, "", "DOCTYPE declarations are not allowed in diagrams: remove it")
        return None
    count = sum(1 for _ in root.iter())
    if count > MAX_ELEMENTS:
        findings.problem(path, "", f"{count} XML elements; a diagram may have at most {MAX_ELEMENTS}")
        return None
    return root


def is_zeebe(root: Any) -> bool:
    """A Camunda 8 diagram: Zeebe extensions, or Modeler's execution platform saying so."""
    if root.get(f"{{{MODELER_NS}}}executionPlatform") == "Camunda Cloud":
        return True
    return any(ZEEBE_NS in element.nsmap.values() for element in root.iter())


def validate_schema(path: str, root: Any, findings: Findings) -> bool:
    """Check a BPMN or DMN root against its XSD; every violation becomes a problem."""
    namespace = etree.QName(root).namespace
    if namespace == BPMN_NS:
        validator = _bpmn_validator()
    elif namespace in DMN_SCHEMAS:
        validator = _dmn_validator(namespace)
    else:
        return True  # DMN 1.4/1.5: SpiffWorkflow ships no schema; its parser still checks the table
    validator.preprocess(root)  # renames bpmn-js's correlation formalExpression, as SpiffWorkflow does
    with _schema_lock:  # an XMLSchema's error log is shared state
        valid = validator.validator.validate(root)
        errors = [(entry.line, entry.message) for entry in validator.validator.error_log]
    for line, message in errors:
        findings.problem(path, element_id_at_line(root, line), f"line {line}: {shorten(message)}")
    return bool(valid)


def element_id_at_line(root: Any, line: int) -> str:
    """The id of the element starting on ``line``, or of its nearest ancestor with one."""
    for element in root.iter():
        if element.sourceline == line:
            while element is not None and not element.get("id"):
                element = element.getparent()
            return "" if element is None else str(element.get("id"))
    return ""


def shorten(message: str) -> str:
    """Namespace URIs as the prefixes people see in Modeler's XML view."""
    return _NAMESPACE.sub(lambda m: _PREFIXES.get(m.group(1), m.group(0)), message)


@functools.cache
def _bpmn_validator() -> Any:
    return BpmnValidator()


@functools.cache
def _dmn_validator(namespace: str) -> Any:
    return BpmnValidator(DMN_SCHEMAS[namespace])
