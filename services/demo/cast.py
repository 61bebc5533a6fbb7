"""The people of the demo: the development users `supportflow up` prints tokens for, with the names
bpmn/notify/directory.toml gives them, so that their mails and inboxes read right."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.kit.auth import mint_token


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    roles: tuple[str, ...]
    #: Candidate groups of the default process (bpmn/*.bpmn) they work in.
    groups: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """e.g. "张伟 (engineer-2)"."""
        return f"{self.name} ({self.subject})"

    def wearing(self, *groups: str) -> Person:
        """The same person with more groups, e.g. an engineer who may also approve changes."""
        return replace(self, groups=tuple(sorted({*self.groups, *groups})))

    def metadata(self, secret: str, org: str) -> tuple[tuple[str, str], ...]:
        token = mint_token(secret=secret, subject=self.subject, org=org, roles=self.roles, groups=self.groups)
        return (("authorization", f"Bearer {token}"),)


REQUESTER = Person("E1001", "李雷", ("requester",))
AGENT = Person("agent-1", "王芳", ("agent",), ("service_desk", "tier1"))
ENGINEER = Person("engineer-2", "张伟", ("agent",), ("development", "expert", "operations", "tier2"))
LEAD = Person("lead-1", "陈静", ("agent", "team_lead"), ("reviewer", "service_desk", "team_lead"))
CHANGE_MANAGER = Person("cm-1", "Maria Schmidt", ("change_manager",), ("change_manager",))

CAST = (REQUESTER, AGENT, ENGINEER, LEAD, CHANGE_MANAGER)
