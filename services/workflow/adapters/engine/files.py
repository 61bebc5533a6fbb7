"""A bundle's files before anything is parsed: how many, how big, and what their paths may be.

A bundle that breaks these rules is rejected before any file is parsed: parsing is the
expensive and risky part, so an oversized or oddly named upload never reaches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from services.workflow.adapters.engine.problems import Findings

MAX_FILES: Final = 200
MAX_FILE_SIZE: Final = 2 * 1024 * 1024
MAX_TOTAL_SIZE: Final = 10 * 1024 * 1024
MAX_PATH_LENGTH: Final = 255
MANIFEST: Final = "bundle.toml"
CALENDAR_DIR: Final = "calendars"
#: In the bundle folder but not part of a deployment (bpmn/README.md).
NOT_DEPLOYED: Final = frozenset({"organisations.toml", "README.md"})

FileKind = Literal["bpmn", "dmn", "manifest", "calendar"]


def file_kind(path: str) -> FileKind | None:
    """What a (sane) bundle path holds; None for a file that has no place in a bundle."""
    pure = PurePosixPath(path)
    if pure.suffix == ".bpmn":
        return "bpmn"
    if pure.suffix == ".dmn":
        return "dmn"
    if path == MANIFEST:
        return "manifest"
    if pure.suffix == ".toml" and len(pure.parts) == 2 and pure.parts[0] == CALENDAR_DIR:
        return "calendar"
    return None


def check_files(files: Mapping[str, bytes], findings: Findings) -> None:
    if len(files) > MAX_FILES:
        findings.problem("", "", f"{len(files)} files; a bundle may have at most {MAX_FILES}")
    total = 0
    for path, content in files.items():
        total += len(content)
        problem = path_problem(path)
        if problem:
            findings.problem(path, "", problem)
        if len(content) > MAX_FILE_SIZE:
            findings.problem(path, "", f"{len(content):,} bytes; a file may have at most {_mib(MAX_FILE_SIZE)}")
    if total > MAX_TOTAL_SIZE:
        findings.problem("", "", f"{total:,} bytes in all; a bundle may have at most {_mib(MAX_TOTAL_SIZE)}")


def path_problem(path: str) -> str | None:
    if not path or len(path) > MAX_PATH_LENGTH or any(ord(c) < 32 for c in path):
        return f"not a usable file name (1 to {MAX_PATH_LENGTH} printable characters)"
    if path.startswith("/") or "\\" in path or ":" in path:
        return "paths are relative, with / between folders (no drive letters or backslashes)"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "the path leaves the bundle or is not normalised: no '..', '.' or empty parts"
    if file_kind(path) is None:
        return "unexpected file: a bundle holds .bpmn and .dmn files, bundle.toml and calendars/<name>.toml"
    return None


def read_bundle_dir(path: Path) -> dict[str, bytes]:
    """The deployable files under ``path``: ``*.bpmn`` and ``*.dmn`` anywhere, ``bundle.toml``,
    ``calendars/*.toml``; keyed by relative POSIX path. Hidden entries, symlinks and the files that
    are not deployed (organisations.toml, README.md) are skipped. A file is read only up to one byte
    past the size limit, so ``compile_bundle`` rejects it without this reading it all."""
    files: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(folder) / d).is_symlink())
        for name in sorted(names):
            full = Path(folder) / name
            relative = full.relative_to(path).as_posix()
            if name.startswith(".") or name in NOT_DEPLOYED or full.is_symlink() or file_kind(relative) is None:
                continue
            with full.open("rb") as handle:
                files[relative] = handle.read(MAX_FILE_SIZE + 1)
    return files


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB"
