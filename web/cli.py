"""The `lastmile` command: serve, migrate, seed the demo agency, create users."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from aiohttp import web

from caserecord import accounts
from caserecord.audit import Actor
from caserecord.db import Database, make_engine, migrate, sqlite_path
from caserecord.errors import RecordError
from caserecord.types import utcnow
from scheduler.demo import DEMO_PASSWORD, seed_demo
from web.app import create_app
from web.logs import setup_logging
from web.settings import Settings, load_settings

log = logging.getLogger("lastmile")


def _database(settings: Settings) -> Database:
    path = sqlite_path(settings.db_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return Database(make_engine(settings.db_url), threads=2)


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    db = _database(settings)
    migrate(db.engine)
    db.close()
    print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_seed_demo(settings: Settings, _: argparse.Namespace) -> int:
    db = _database(settings)
    migrate(db.engine)
    with db.session(write=True) as s:
        created = seed_demo(s, utcnow())
    db.close()
    print("demo agency seeded" if created else "demo agency already there")
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    password = args.password or getpass.getpass("Password: ")
    db = _database(settings)
    migrate(db.engine)
    try:
        with db.session(write=True) as s:
            user = accounts.create_user(
                s,
                Actor.system(),
                email=args.email,
                name=args.name,
                role=args.role,
                password=password,
                timezone=args.timezone,
                supervisor_id=args.supervisor_id,
            )
    except RecordError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"created {user.role} {user.email} (id {user.id})")
    return 0


def cmd_serve(settings: Settings, _: argparse.Namespace) -> int:
    app = create_app(settings)
    base = settings.base_url
    banner = [
        "",
        f"  Lastmile is running on {base}/",
        f"  Sign in at {base}/",
    ]
    if settings.demo:
        banner += [
            f"    caseworker  worker@example.org      / {DEMO_PASSWORD}  -> {base}/worker",
            f"    supervisor  supervisor@example.org  / {DEMO_PASSWORD}  -> {base}/supervisor",
            f"    admin       admin@example.org       / {DEMO_PASSWORD}",
        ]
    banner += [f"  API document: {base}/api/openapi.json   health: {base}/healthz", "  Stop with Ctrl-C.", ""]
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=lambda _: print("\n".join(banner), flush=True),
        access_log=None,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the `lastmile` command."""
    parser = argparse.ArgumentParser(prog="lastmile", description="Lastmile virtual visits")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the web app and API").set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed-demo", help="create the demo agency (demo mode only)").set_defaults(fn=cmd_seed_demo)
    cu = sub.add_parser("create-user", help="create a staff account")
    cu.add_argument("--email", required=True)
    cu.add_argument("--name", required=True)
    cu.add_argument("--role", choices=["admin", "supervisor", "worker"], default="admin")
    cu.add_argument("--timezone", default="UTC")
    cu.add_argument("--supervisor-id", type=int, default=None)
    cu.add_argument("--password", help="omit to be asked")
    cu.set_defaults(fn=cmd_create_user)
    args = parser.parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_format)
    if args.command == "seed-demo" and not settings.demo:
        print("refusing to seed demo accounts: set LASTMILE_DEMO=1", file=sys.stderr)
        return 2
    fn = args.fn
    result: int = fn(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
