"""`cse-serving`: run the API, manage its tokens, and list the settings it reads from the environment.

cse-serving serve [--host H] [--port P] [--store DIR] [--no-auth] [--log-level L] [--access-log]
                  [--header-timeout S] [--body-timeout S] [--keep-alive S] [--limit-concurrency N]
                  [--rate-limit R] [--auth-lockout R] [--auth-lockout-seconds S]
cse-serving token create --name N [--admin]      prints the token once
cse-serving token list
cse-serving token revoke NAME
cse-serving settings                             every CSE_* variable serving reads, its default and meaning
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from cse_models.errors import CseError
from cse_serving.env_fields import described, settings_table
from cse_serving.settings import Settings

DB_HELP = described(Settings, "db_path")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cse-serving", description="cse prediction API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the HTTP API (uvicorn)", epilog="Every environment variable: cse-serving settings"
    )
    serve.add_argument("--host", help=described(Settings, "host"))
    serve.add_argument("--port", type=int, help=described(Settings, "port"))
    serve.add_argument("--store", help=described(Settings, "store_root"))
    serve.add_argument("--db", help=DB_HELP)
    serve.add_argument("--no-auth", action="store_true", help="disable token checks (local demos only)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--access-log", action="store_true", default=None, help="log every request: id, route, status, token name"
    )
    limits = serve.add_argument_group("limits")
    limits.add_argument("--header-timeout", type=float, help=described(Settings, "header_timeout_s"))
    limits.add_argument("--body-timeout", type=float, help=described(Settings, "body_timeout_s"))
    limits.add_argument("--keep-alive", type=float, help=described(Settings, "keep_alive_s"))
    limits.add_argument("--limit-concurrency", type=int, help=described(Settings, "limit_concurrency"))
    limits.add_argument("--rate-limit", help=described(Settings, "rate_limit"))
    limits.add_argument("--auth-lockout", help=described(Settings, "auth_lockout"))
    limits.add_argument("--auth-lockout-seconds", type=float, help=described(Settings, "auth_lockout_s"))

    token = commands.add_parser("token", help="manage API tokens")
    token.add_argument("--db", help=DB_HELP)
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="may reload and pin models")
    actions.add_parser("list", help="list tokens (names and roles, never the tokens)")
    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")

    commands.add_parser("settings", help="list every environment variable, its default and what it means")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from cse_serving.app import create_app
    from cse_serving.auth import TokenStore
    from cse_serving.server import serve

    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        store_root=args.store,
        db_path=args.db,
        auth=False if args.no_auth else None,
        access_log=args.access_log,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
        limit_concurrency=args.limit_concurrency,
        rate_limit=args.rate_limit,
        auth_lockout=args.auth_lockout,
        auth_lockout_s=args.auth_lockout_seconds,
    )
    if settings.auth:
        # An unreachable token database (a wrong password) fails here in one line, not as a traceback from
        # uvicorn's lifespan.
        TokenStore(settings.db_path).close()
    # A shell starts background jobs with SIGINT ignored; restore the defaults so `kill -INT`/`-TERM` work
    # (uvicorn installs its own graceful handlers on top while it serves).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0 if serve(create_app(settings), settings, log_level=args.log_level) else 1


def _token(args: argparse.Namespace) -> int:
    from cse_serving.auth import TokenStore

    settings = Settings.from_env(db_path=args.db)
    store = TokenStore(settings.db_path)
    try:
        if args.action == "create":
            print(store.create(args.name, "admin" if args.admin else "user"))
            print(f"token {args.name!r} created; it is shown only this once", file=sys.stderr)
        elif args.action == "list":
            for record in store.list():
                state = "revoked" if record.revoked else "active"
                print(f"{record.name}\t{record.role}\t{record.created_at}\t{state}")
        elif args.action == "revoke":
            if not store.revoke(args.name):
                print(f"no active token named {args.name!r}", file=sys.stderr)
                return 1
            print(f"token {args.name!r} revoked", file=sys.stderr)
    finally:
        store.close()
    return 0


def _settings(args: argparse.Namespace) -> int:
    print(settings_table(Settings))
    return 0


COMMANDS = {"serve": _serve, "token": _token, "settings": _settings}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except CseError as exc:
        print(f"cse-serving: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
