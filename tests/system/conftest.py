"""The whole system as operators run it: its own NATS JetStream server, intake, workflow and notify
as separate OS processes (`python -m services.<name>`), each on its own fresh PostgreSQL database,
configured by the environment alone. notify mails a real SMTP server (aiosmtpd) and calls a real
HTTP server for its webhooks, both in this process.

notify runs a copy of bpmn/notify/ with what an organisation would add for itself: ACME's
development team hears of escalations and closings in its WeCom group (the robot directory.toml
already names), and ACME's quality dashboard receives every rating as signed JSON."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.demo.desk import Desk, Endpoints
from services.demo.timeline import Progress
from tests.notify.sinks import HttpSink, SmtpSink
from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.support.postgres import PostgresServer, unique_database_name
from tests.support.processes import REPO_ROOT, ServiceProcess

SECRET = "test-secret-for-supportflow-tests-0123456789"
MAIL_DOMAIN = "support.acme.example"
WECOM_PATH = "/wecom/webhook/send"
WECOM_KEY = "dev-key-456"
FEED_PATH = "/quality/ratings"
FEED_SECRET = "quality-feed-secret-0123456789"
SERVICES = ("intake", "workflow", "notify")

DIRECTORY_ADDITION = """
# Added by the system test: ACME's quality dashboard.
[orgs.acme.webhooks.acme-quality-feed]
kind = "generic"
url_env = "NOTIFY_ACME_QUALITY_FEED_URL"
secret_env = "NOTIFY_ACME_QUALITY_FEED_SECRET"
"""

#: ACME's own rules (orgs/acme/rules.toml): its list for an event replaces the default one, so the
#: default blocks of ticket.escalated and ticket.closed are repeated before ACME's additions.
ACME_RULES = """
[[events."ticket.escalated"]]
to = "group"
group = "tier2"
channel = ["email", "in_app"]
template = "escalation"
when = { to_tier = "tier2" }

[[events."ticket.escalated"]]
to = "group"
group = "expert"
channel = ["email", "in_app"]
template = "escalation"
when = { to_tier = "expert" }

[[events."ticket.escalated"]]
to = "group"
group = "team_lead"
channel = "email"
template = "escalation"
when = { automatic = true }

# The routed team's chat robot hears of the escalation…
[[events."ticket.escalated"]]
to = "team"
channel = "webhook"
template = "escalation"

[[events."ticket.closed"]]
to = "requester"
channel = ["email", "in_app"]
template = "closure"

# … and of the closing.
[[events."ticket.closed"]]
to = "team"
channel = "webhook"
template = "closure"

# Every rating goes to the quality dashboard.
[[events."ticket.rated"]]
to = "webhook"
webhook = "acme-quality-feed"
channel = "webhook"
template = "rating_feed"
"""

RATING_FEED_TEMPLATE = '{{ ticket.number }}「{{ ticket.title }}」评价：{{ event.rating | label("rating") }}\n'


def notify_config(target: Path) -> Path:
    shutil.copytree(REPO_ROOT / "bpmn" / "notify", target)
    directory = target / "directory.toml"
    directory.write_text(directory.read_text() + DIRECTORY_ADDITION)
    acme = target / "orgs" / "acme"
    (acme / "templates").mkdir(parents=True)
    (acme / "rules.toml").write_text(ACME_RULES)
    (acme / "templates" / "rating_feed.zh-CN.txt.j2").write_text(RATING_FEED_TEMPLATE)
    return target


@dataclass
class System:
    processes: dict[str, ServiceProcess]
    smtp: SmtpSink
    http: HttpSink

    @property
    def endpoints(self) -> Endpoints:
        p = self.processes
        return Endpoints(p["intake"].address, p["workflow"].address, p["notify"].address)

    def desk(self) -> Desk:
        """The demo's client of the public APIs, as the test's people (no progress output)."""
        return Desk(self.endpoints, secret=SECRET, org="acme", progress=Progress(None), wait_seconds=60.0)

    def stop(self, name: str, how: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: the service drains and exits 0 (a deployment); SIGKILL: a crash."""
        service = self.processes[name]
        if how == signal.SIGKILL:
            service.kill()
        else:
            assert service.terminate() == 0, f"{name} did not stop cleanly on SIGTERM:\n{service.log_tail()}"

    def start(self, name: str) -> None:
        """Start a stopped service again on its port and database; returns once it is SERVING."""
        self.processes[name].start()


@pytest.fixture
def system(
    own_nats_server: NatsServer,
    postgres_server: PostgresServer,
    service_process_factory: ServiceFactory,
    tmp_path: Path,
) -> Iterator[System]:
    databases = {name: unique_database_name() for name in SERVICES}
    smtp, http = SmtpSink(), HttpSink()
    smtp.start()
    http.start()
    processes: dict[str, ServiceProcess] = {}
    try:
        common = {
            "SUPPORTFLOW_ENVIRONMENT": "test",
            "SUPPORTFLOW_NATS_URL": own_nats_server.url,
            "SUPPORTFLOW_JWT_SECRET": SECRET,
            "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
            "SUPPORTFLOW_GRPC_PORT": "{grpc_port}",
            "SUPPORTFLOW_DATABASE_POOL_SIZE": "3",
        }
        own = {
            "intake": {},
            "workflow": {},
            "notify": {
                "SUPPORTFLOW_CONFIG_DIR": str(notify_config(tmp_path / "notify-config")),
                "SUPPORTFLOW_SMTP_HOST": "127.0.0.1",
                "SUPPORTFLOW_SMTP_PORT": str(smtp.port),
                "SUPPORTFLOW_MAIL_DOMAIN": MAIL_DOMAIN,
                "NOTIFY_ACME_DEV_WECOM_URL": http.url(f"{WECOM_PATH}?key={WECOM_KEY}"),
                "NOTIFY_ACME_OPS_DINGTALK_URL": http.url("/dingtalk/robot/send?access_token=ops"),
                "NOTIFY_ACME_OPS_DINGTALK_SECRET": "SEC-ops-0123456789",
                "NOTIFY_ACME_QUALITY_FEED_URL": http.url(FEED_PATH),
                "NOTIFY_ACME_QUALITY_FEED_SECRET": FEED_SECRET,
                "NOTIFY_GLOBEX_OPS_SECRET": "globex-ops-secret-0123456789",
            },
        }
        urls = {name: postgres_server.create_database(databases[name]) for name in SERVICES}

        def start(name: str) -> None:
            env = {**common, "SUPPORTFLOW_DATABASE_URL": urls[name], **own[name]}
            processes[name] = service_process_factory(name, f"services.{name}", env)

        with ThreadPoolExecutor(len(SERVICES)) as starting:  # all three at once; each waits for SERVING
            list(starting.map(start, SERVICES))
        yield System(processes, smtp, http)
    finally:
        with ThreadPoolExecutor(len(SERVICES)) as stopping:  # SIGTERM all three at once
            list(stopping.map(lambda service: service.terminate(), processes.values()))
        smtp.stop()
        http.stop()
        for name in databases.values():
            postgres_server.drop_database(name)
        sys.stdout.flush()
