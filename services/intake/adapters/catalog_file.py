"""Loads the organisations' catalogue from a TOML file (see `bpmn/organisations.toml`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.intake.domain.catalog import Catalog, Limits, Organisation, ProblemType
from services.intake.domain.numbering import PREFIX
from services.intake.domain.validation import REQUIRED_INFO_ITEM
from services.kit.auth import ORG_ID


class CatalogError(ValueError):
    """The catalogue file is wrong; the message names the file and the key."""


def load_catalog(path: Path) -> Catalog:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    orgs = data.get("organisations")
    if not isinstance(orgs, dict) or not orgs:
        raise CatalogError(f"{path}: needs at least one [organisations.<id>] table")
    defaults = data.get("defaults", {})
    return Catalog({org_id: _organisation(path, org_id, {**defaults, **spec}) for org_id, spec in orgs.items()})


def _organisation(path: Path, org_id: str, spec: dict[str, Any]) -> Organisation:
    where = f"{path}: organisations.{org_id}"
    if not ORG_ID.match(org_id):
        raise CatalogError(f"{where}: organisation ids are lower-case letters, digits, '-' and '_'")
    try:
        tz = ZoneInfo(spec.get("time_zone", "Asia/Shanghai"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CatalogError(f"{where}.time_zone: unknown time zone {spec.get('time_zone')!r}") from exc
    prefix = spec.get("ticket_prefix", "TS")
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        raise CatalogError(f"{where}.ticket_prefix: 1–8 upper-case letters, got {prefix!r}")
    problem_types: dict[str, ProblemType] = {}
    for code, pt in _table(where, spec, "problem_types").items():
        required = tuple(pt.get("required_info", ()))
        for item in required:
            if not REQUIRED_INFO_ITEM.match(item):
                raise CatalogError(f"{where}.problem_types.{code}.required_info: unknown item {item!r}")
        problem_types[code] = ProblemType(code, str(pt.get("label", code)), required)
    known_limits = set(Limits.__dataclass_fields__)
    limits_spec = spec.get("limits", {})
    unknown = set(limits_spec) - known_limits
    if unknown:
        raise CatalogError(f"{where}.limits: unknown keys {sorted(unknown)}; known: {sorted(known_limits)}")
    return Organisation(
        id=org_id,
        name=str(spec.get("name", org_id)),
        time_zone=tz,
        ticket_prefix=prefix,
        channels=frozenset(_codes(where, spec, "channels")),
        problem_types=problem_types,
        impact_scopes=frozenset(_codes(where, spec, "impact_scopes")),
        urgencies=frozenset(_codes(where, spec, "urgencies")),
        limits=Limits(**{k: int(v) for k, v in limits_spec.items()}),
    )


def _table(where: str, spec: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    value = spec.get(key)
    if not isinstance(value, dict) or not value:
        raise CatalogError(f"{where}.{key}: needs at least one entry")
    return value


def _codes(where: str, spec: dict[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}.{key}: needs a non-empty list of codes")
    return value
