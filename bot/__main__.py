"""`python -m bot` serves; `check`, `migrate`, `postmortem` and `demo` are the other subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.exceptions import ConfigError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="ChatOps incident response for Slack.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the bot (default)")
    sub.add_parser("check", help="validate bot.yml and the playbooks (and Slack, when tokens are set)")
    migrate = sub.add_parser(
        "migrate", help="upgrade the database schema to the newest revision (serve does it at start too)"
    )
    migrate.add_argument(
        "--to",
        default=None,
        metavar="REVISION",
        help="move to this revision instead, down as well as up: before rolling back to an older release, the"
        " revision it names when it refuses to start (undoing a revision drops the data kept only there)",
    )
    pm = sub.add_parser("postmortem", help="print or write an incident's post-mortem")
    pm.add_argument("incident", help="INC-7, inc-7 or 7")
    pm.add_argument("--format", choices=["markdown", "html"], default="markdown")
    pm.add_argument("-o", "--output", type=Path, default=None)
    pm.add_argument(
        "--as",
        dest="reader",
        default=None,
        metavar="USER_ID",
        help="who will read it (a Slack user ID): the incident is printed only if they may see it",
    )
    demo = sub.add_parser("demo", help="play a whole incident locally, without a Slack workspace")
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-postmortem.md"))
    demo.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="PATH",
        help="keep the demo's SQLite database in PATH (to try `python -m bot postmortem INC-1` on it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    from bot import logs
    from bot.settings import Settings

    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, "text" if command != "serve" else settings.log_format)
    try:
        return _run(command, args, settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.db import unusable

        problem = unusable(exc, url=settings.database_url)  # a wrong path, host or password: one line, not 170
        if problem is None:
            raise
        print(problem, file=sys.stderr)
        return 1


def _run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    """One subcommand; each imports only what it needs, so `check` or `demo` never loads the server."""
    if command in ("serve", "migrate"):  # `postmortem` first says when there is no file at all
        from bot.db import sqlite_unopenable

        problem = sqlite_unopenable(settings.database_url)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
    if command == "serve":
        settings.require_serving()
        from bot.runner import serve

        asyncio.run(serve(settings))
        return 0
    if command == "check":
        from bot.check import run_check

        return asyncio.run(run_check(settings))
    if command == "migrate":
        from bot.migrations.run import migrate_cli

        return asyncio.run(migrate_cli(settings.database_url, to=args.to))
    if command == "postmortem":
        from bot.postmortem.cli import run_cli

        return asyncio.run(
            run_cli(settings, incident=args.incident, fmt=args.format, output=args.output, reader=args.reader)
        )
    if command == "demo":
        from bot.demo.run import run_demo

        return asyncio.run(run_demo(settings, output=args.output, keep=args.keep.resolve() if args.keep else None))
    return 2


if __name__ == "__main__":
    sys.exit(main())
