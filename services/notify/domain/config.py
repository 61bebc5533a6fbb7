"""The whole notification configuration of an installation (the folder `bpmn/notify/`), loaded
and cross-checked at once: rules, directory, templates, and each organisation's overrides.

    rules.toml                      default rules (rules.py)
    directory.toml                  people, groups, webhooks per organisation (directory.py)
    templates/*.j2                  default templates (templates.py)
    orgs/<org>/rules.toml           optional: the events whose rules <org> changes
    orgs/<org>/templates/*.j2       optional: templates <org> changes or adds (same file names win)
    README.md                       ignored

`load_notify_config` raises RulesError with every problem of every file (including a rule naming a
template, group or webhook that does not exist); the service keeps the configuration in force when
a new one is rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TypeVar

from services.notify.domain.directory import Directory, parse_directory
from services.notify.domain.errors import ConfigProblem, RulesError
from services.notify.domain.problems import Problems
from services.notify.domain.rules import RuleBook, directory_problems, load_rule_book, template_problems
from services.notify.domain.templates import TemplateSet, load_template_set

IGNORED = frozenset({"README.md"})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    rules: RuleBook
    directory: Directory
    templates: TemplateSet
    org_templates: Mapping[str, TemplateSet]

    def templates_for(self, org: str) -> TemplateSet:
        return self.org_templates.get(org, self.templates)


def load_notify_config(files: Mapping[str, bytes]) -> NotifyConfig:
    """`files`: path relative to the folder (POSIX, e.g. "templates/receipt.zh-CN.txt.j2") → content."""
    problems = Problems()
    texts: dict[str, str] = {}
    default_templates: dict[str, bytes] = {}
    org_template_files: dict[str, dict[str, bytes]] = {}
    for path in sorted(files):
        parts = path.split("/")
        if path in IGNORED:
            continue
        if parts[0] == "templates" and len(parts) == 2:
            default_templates[parts[1]] = files[path]
        elif parts[0] == "orgs" and len(parts) == 4 and parts[2] == "templates":
            org_template_files.setdefault(parts[1], {})[parts[3]] = files[path]
        elif path in ("rules.toml", "directory.toml") or (parts[0] == "orgs" and parts[2:] == ["rules.toml"]):
            try:
                texts[path] = files[path].decode("utf-8-sig")
            except UnicodeDecodeError:
                problems.add(path, "", "not UTF-8: save the file as UTF-8")
        else:
            problems.add(
                path,
                "",
                "unexpected file: this folder holds rules.toml, directory.toml, templates/*.j2"
                " and orgs/<org>/rules.toml, orgs/<org>/templates/*.j2",
            )

    book = _attempt(problems, lambda: load_rule_book(texts))
    directory = None
    if "directory.toml" in texts:
        directory = _attempt(problems, lambda: parse_directory(texts["directory.toml"], source="directory.toml"))
    elif "directory.toml" not in files:
        problems.add("directory.toml", "", "missing: the directory of people, groups and webhooks is required")
    templates = _attempt(problems, lambda: load_template_set(default_templates, prefix="templates/"))
    org_templates: dict[str, TemplateSet] = {}
    if templates is not None:
        for org, own in sorted(org_template_files.items()):
            loaded = _attempt(
                problems, partial(load_template_set, {**default_templates, **own}, prefix=f"orgs/{org}/templates/")
            )
            if loaded is not None:
                org_templates[org] = loaded

    if book is not None and templates is not None:
        problems.extend(template_problems(book.default, templates.catalog))
        for org in sorted(book.orgs):
            catalog = org_templates.get(org, templates).catalog
            problems.extend(p for p in template_problems(book.for_org(org), catalog) if p not in problems.items)
    if book is not None and directory is not None:
        for org in sorted(set(book.orgs) - set(directory.orgs)):
            problems.add(
                f"orgs/{org}/rules.toml", "", f"organisation '{org}' is not in directory.toml: add [orgs.{org}]"
            )
        for org in sorted(directory.orgs):
            found = directory_problems(book.for_org(org), directory.org(org))
            problems.extend(p for p in found if p not in problems.items)
    for org in sorted(set(org_template_files) - set(directory.orgs if directory else org_template_files)):
        problems.add(f"orgs/{org}/templates", "", f"organisation '{org}' is not in directory.toml: add [orgs.{org}]")

    if problems or book is None or directory is None or templates is None:
        raise RulesError(problems.items)
    return NotifyConfig(book, directory, templates, MappingProxyType(org_templates))


def _attempt(problems: Problems, load: Callable[[], T]) -> T | None:
    try:
        return load()
    except RulesError as exc:
        problems.extend(exc.problems)
        return None


__all__ = ["ConfigProblem", "NotifyConfig", "load_notify_config"]
