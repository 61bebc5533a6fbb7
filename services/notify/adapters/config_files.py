"""The notification configuration as files (settings.config_dir, e.g. bpmn/notify/), kept current.

`ConfigHolder` loads the folder at start-up and refuses to start with a configuration that does
not load. Afterwards it looks at the files' sizes and modification times every
`config_poll_seconds`; when they changed it loads them again and swaps the new configuration in
only if it loads: a rejected one is logged with every problem (file, key, what to do) and kept in
`rejected`, and the configuration in force stays in force.

Webhook URLs and secrets that the directory names by environment variable (`url_env`,
`secret_env`) are resolved here, once per load, from the environment mapping `main()` passes in.
An unset variable makes the configuration invalid in production; in dev and test it is logged,
and that webhook's notices are stored dead with the reason (so one unset robot URL does not stop
the rest of the configuration from working on a developer's machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from services.notify.application.ports import ActiveConfig
from services.notify.domain.config import NotifyConfig, load_notify_config
from services.notify.domain.directory import WebhookKind
from services.notify.domain.errors import ConfigProblem, RulesError
from services.notify.domain.problems import key

log = logging.getLogger(__name__)

#: (relative path, modification time in ns, size) of every file: what "changed" compares.
Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A webhook ready to call: its format, its URL and signing secret (resolved from the environment)."""

    kind: WebhookKind
    url: str
    secret: str = ""


def _files(root: Path) -> list[Path]:
    """Every file under `root`, sorted, hidden files and folders left out. Symbolic links are
    followed: a Kubernetes ConfigMap or projected volume shows its folders as links (into the
    hidden `..data`)."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder, name) for name in names if not name.startswith(".") and Path(folder, name).is_file())
    return sorted(found)


def signature(root: Path) -> Signature:
    out = []
    for path in _files(root):
        stat = path.stat()
        out.append((path.relative_to(root).as_posix(), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


#: In a file name at the top of the folder, this stands for "/": a Kubernetes ConfigMap cannot hold
#: folders (its keys allow letters, digits, "-", "_" and "." only), so a ConfigMap with the keys
#: `rules.toml`, `directory.toml`, `templates__receipt.zh-CN.txt.j2`, `orgs__globex__rules.toml`, …
#: mounted whole is the folder (deploy/README.md, "Notification configuration").
FLAT_SEPARATOR = "__"


def read_config_dir(root: Path) -> dict[str, bytes]:
    """{relative POSIX path: content} of every file under `root` (hidden files and folders skipped;
    top-level names with FLAT_SEPARATOR unfolded into their path)."""
    if not root.is_dir():
        raise RulesError(
            [ConfigProblem(str(root), "", "not a folder: set SUPPORTFLOW_CONFIG_DIR to the notify folder")]
        )
    files: dict[str, bytes] = {}
    problems = []
    for path in _files(root):
        relative = path.relative_to(root).as_posix()
        name = relative.replace(FLAT_SEPARATOR, "/") if "/" not in relative else relative
        if name in files:
            problems.append(ConfigProblem(relative, "", f"is {name} a second time: keep one of the two"))
            continue
        try:
            files[name] = path.read_bytes()
        except OSError as exc:
            problems.append(ConfigProblem(relative, "", f"cannot be read: {exc.strerror or exc}"))
    if problems:
        raise RulesError(problems)
    return files


def resolve_webhooks(
    config: NotifyConfig, env: Mapping[str, str]
) -> tuple[dict[tuple[str, str], Endpoint], dict[tuple[str, str], ConfigProblem]]:
    """Each webhook's endpoint, or the problem that keeps it from being called."""
    endpoints: dict[tuple[str, str], Endpoint] = {}
    problems: dict[tuple[str, str], ConfigProblem] = {}
    for org in config.directory.orgs.values():
        for hook in org.webhooks.values():
            where = (org.id, hook.name)
            url = hook.url or env.get(hook.url_env, "").strip()
            if hook.url_env and not url:
                problems[where] = _env_problem(org.id, hook.name, "url_env", f"{hook.url_env} is not set")
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems[where] = _env_problem(org.id, hook.name, "url_env", f"{hook.url_env} holds no http(s) URL")
                continue
            secret = env.get(hook.secret_env, "") if hook.secret_env else ""
            if hook.secret_env and not secret:
                problems[where] = _env_problem(org.id, hook.name, "secret_env", f"{hook.secret_env} is not set")
                continue
            endpoints[where] = Endpoint(hook.kind, url, secret)
    return endpoints, problems


def _env_problem(org: str, hook: str, field: str, problem: str) -> ConfigProblem:
    holds = "URL" if field == "url_env" else "signing secret"
    return ConfigProblem(
        "directory.toml",
        key("orgs", org, "webhooks", hook, field),
        f"the environment variable {problem}: set it to the webhook's {holds} where the notify service runs",
    )


class ConfigHolder:
    def __init__(
        self,
        root: Path,
        env: Mapping[str, str],
        *,
        strict_env: bool,
        poll_seconds: float,
    ) -> None:
        self.root = root
        self._env = dict(env)
        self._strict = strict_env
        self._poll = poll_seconds
        #: The configuration in force and its webhooks' endpoints, swapped together in one store
        #: (a reload runs in a worker thread while the event loop reads).
        self._loaded: tuple[ActiveConfig, Mapping[tuple[str, str], Endpoint]] | None = None
        self._signature: Signature = ()
        #: A changed folder seen at the last look and not loaded yet: it is loaded once a second look
        #: finds it the same, so a file an editor is half way through writing (truncated, then
        #: written) never goes into force.
        self._settling: Signature | None = None
        #: The last configuration refused since the one in force was loaded (None: none refused).
        self.rejected: RulesError | None = None
        self.loaded_at: datetime | None = None
        self.reloads = 0
        self._stopping = asyncio.Event()

    @property
    def current(self) -> ActiveConfig:
        if self._loaded is None:
            raise RuntimeError("ConfigHolder.load_initial() was not called")
        return self._loaded[0]

    def load_initial(self) -> None:
        """Load the folder; raises RulesError (with every problem) when it does not load."""
        seen = signature(self.root) if self.root.is_dir() else ()
        self._install(*self._load(), seen)

    def endpoint(self, organization: str, webhook: str) -> Endpoint | str:
        """Where to call `webhook` of `organization`, or why it cannot be called."""
        if self._loaded is None:
            raise RuntimeError("ConfigHolder.load_initial() was not called")
        active, endpoints = self._loaded
        found = endpoints.get((organization, webhook))
        if found is not None:
            return found
        reason = active.unusable_webhooks.get((organization, webhook))
        return reason or f"organisation '{organization}' has no webhook '{webhook}' in directory.toml any more"

    def max_per_minute(self, organization: str, webhook: str) -> int:
        """The messages `webhook` of `organization` takes in any 60 seconds (0: no limit; also for
        a webhook no longer configured, whose notices fail anyway)."""
        org = self.current.notify.directory.orgs.get(organization)
        hook = org.webhooks.get(webhook) if org is not None else None
        return hook.max_per_minute if hook is not None else 0

    def check(self) -> bool:
        """Reload if the files changed and have stayed the same since the previous look; True when
        a new configuration went into force."""
        try:
            seen = signature(self.root)
        except OSError as exc:
            log.warning("cannot look at %s: %s", self.root, exc)
            return False
        if seen == self._signature:
            self._settling = None
            return False
        if seen != self._settling:
            self._settling = seen
            return False
        try:
            loaded = self._load()
        except RulesError as exc:
            if self._changed_while_reading(seen):
                return False
            self._signature = seen  # report this version once, not at every look
            log.error(
                "%s: the changed notification configuration was rejected; the previous one stays in force.\n%s",
                self.root,
                exc.message,
            )
            self.rejected = exc  # after the log line: whoever sees `rejected` (another thread) finds it logged
            return False
        if self._changed_while_reading(seen):
            return False
        self._install(*loaded, seen)
        self.reloads += 1
        log.info("%s: new notification configuration in force", self.root)
        return True

    def _changed_while_reading(self, seen: Signature) -> bool:
        """True when the files are no longer those of `seen`: what was read may be half of an
        edit, so it is left alone and the folder waited on to settle again."""
        try:
            now = signature(self.root)
        except OSError:
            now = ()
        if now == seen:
            return False
        self._settling = now
        return True

    async def run(self) -> None:
        """Look for changes every poll interval until `stop()`."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._poll)
            if not self._stopping.is_set():
                try:
                    await asyncio.to_thread(self.check)
                except Exception:
                    log.exception("checking %s for changes failed", self.root)

    def stop(self) -> None:
        self._stopping.set()

    def _load(self) -> tuple[ActiveConfig, dict[tuple[str, str], Endpoint]]:
        config = load_notify_config(read_config_dir(self.root))
        endpoints, problems = resolve_webhooks(config, self._env)
        if problems and self._strict:
            raise RulesError(problems.values())
        for problem in problems.values():
            log.warning("%s (its notices will be stored dead with this reason)", problem)
        unusable = {where: f"{p.message} ({p.file}: {p.path})" for where, p in problems.items()}
        return ActiveConfig(config, MappingProxyType(unusable)), endpoints

    def _install(self, active: ActiveConfig, endpoints: dict[tuple[str, str], Endpoint], seen: Signature) -> None:
        self._loaded = (active, MappingProxyType(endpoints))
        self._signature = seen
        self.rejected = None
        self.loaded_at = datetime.now(UTC)
