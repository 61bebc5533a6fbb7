"""What deploy validation reports: problems (the bundle is rejected) and warnings (it is not).

Every problem names the file and, where it is about one, the diagram element by its id (what
Camunda Modeler shows in the properties panel), and says what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.kit.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True, order=True)
class BundleProblem:
    """One thing wrong with a bundle. ``element_id`` is "" when the problem is about the whole
    file; ``file`` is "" when it is about the whole bundle (too many files)."""

    file: str
    element_id: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.element_id, self.message) if part)


class BundleRejected(InvalidArgument):
    """The bundle cannot be deployed; ``problems`` holds every problem found, sorted by file and
    element. An InvalidArgument, so the gRPC layer reports one field violation per problem."""

    def __init__(self, problems: Iterable[BundleProblem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        if not self.problems:
            raise ValueError("BundleRejected needs at least one problem")
        super().__init__(
            (FieldViolation(p.file or "bundle", str(p)) for p in self.problems),
            message=f"bundle rejected, {len(self.problems)} problem(s): " + "; ".join(map(str, self.problems[:5])),
        )


class Findings:
    """Collects problems and warnings while a bundle is checked."""

    def __init__(self) -> None:
        self.problems: list[BundleProblem] = []
        self.warnings: list[BundleProblem] = []

    def problem(self, file: str, element_id: str | None, message: str) -> None:
        self.problems.append(BundleProblem(file, element_id or "", message))

    def warning(self, file: str, element_id: str | None, message: str) -> None:
        self.warnings.append(BundleProblem(file, element_id or "", message))

    def has_problem_at(self, file: str, element_id: str) -> bool:
        return any(p.file == file and p.element_id == element_id for p in self.problems)
