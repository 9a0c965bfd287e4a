"""`python -m bot postmortem INC-7 [--format markdown|html] [-o FILE]`: the draft without Slack.

Prints the document to stdout, or writes it to FILE. Errors are one line on stderr with exit
code 1 (unknown incident, bad template) or 2 (arguments that do not parse), as a shell expects.
People are named as Slack shows them when SLACK_BOT_TOKEN is set (one cached `users.info` each);
without it, or when Slack cannot say, the document keeps their IDs and stderr says why.

The incident goes through the same access check as every other surface (`can_see`), for the
person `--as` names (a private one only for someone named): whoever runs this holds the database
and could read it anyway, so this is not a lock, but a security incident's post-mortem is not
printed for a wiki by accident.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import TextIO

from bot.clock import SystemClock
from bot.db import Database, missing_file, shown_url, sqlite_unopenable
from bot.exceptions import BotError, NotFound, PermissionDenied, UsageError
from bot.incidents.access import Access, Membership
from bot.incidents.models import Incident
from bot.postmortem import service
from bot.postmortem.data import PostmortemData
from bot.postmortem.flows import people
from bot.settings import Settings

_REF = re.compile(r"(?:inc)?[-\s#]?(\d+)", re.IGNORECASE)


def parse_ref(text: str) -> int:
    """`INC-7`, `inc-7`, `inc7`, `#7` and `7` all mean incident 7."""
    match = _REF.fullmatch(text.strip())
    if not match or int(match.group(1)) < 1:
        raise UsageError(f"{text!r} is not an incident: write INC-7 or 7", usage="postmortem INC-7")
    return int(match.group(1))


async def run_cli(
    settings: Settings,
    *,
    incident: str,
    fmt: str,
    output: Path | None,
    reader: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        number = parse_ref(incident)
        fmt_name = service.check_format(fmt)
    except UsageError as exc:
        print(f"error: {exc}", file=err)
        return 2
    missing = missing_file(settings.database_url)
    if missing is not None:  # reading must not leave an empty database behind a typo
        print(f"error: there is no database at {missing} (check DATABASE_URL)", file=err)
        return 1
    problem = sqlite_unopenable(settings.database_url)
    if problem is not None:
        print(problem, file=err)
        return 1
    db = Database(settings.database_url)
    try:
        await db.migrate()
        async with db.session() as session:
            row = await session.get(Incident, number)
            if row is None:
                raise NotFound(f"INC-{number}")
            data = await service.build(session, incident_id=number)
        await _may_read(settings, row, reader)
        data.user_names = await _names(settings, data, err)
        document = service.render(data, fmt=fmt_name, templates_dir=settings.config.postmortem.templates_dir)
    except NotFound:
        print(
            f"error: INC-{number} does not exist in {shown_url(settings.database_url)} (check DATABASE_URL)", file=err
        )
        return 1
    except BotError as exc:
        print(f"error: {exc}", file=err)
        return 1
    finally:
        await db.dispose()
    if output is None:
        out.write(document)
        out.flush()
        return 0
    try:
        await asyncio.to_thread(_write, output, document)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=err)
        return 1
    print(f"wrote the {data.ref} post-mortem ({fmt_name}, {len(data.events)} timeline events) to {output}", file=err)
    return 0


async def _may_read(settings: Settings, incident: Incident, reader: str | None) -> None:
    """PermissionDenied unless `reader` may see the incident (`can_see`, as on every other surface).

    Without `--as` a public incident is printed for whoever runs this (they hold the database); a
    named reader goes through `can_see` for every incident, so a guest outside its channel, or an ID
    Slack does not know, is refused a public one too."""
    rule = "only for a member of its channel or someone in permissions.private_incidents"
    if not reader:
        if incident.private:
            raise PermissionDenied(
                f"{incident.ref} is private: it is printed {rule}; say who will read it with --as U…"
            )
        return
    membership: Membership | None = None
    if settings.slack_bot_token is not None:
        from bot.slack.adapters.access import membership_reader

        token, url = settings.slack_bot_token.get_secret_value(), settings.slack_api_url
        membership = membership_reader(token=token, api_url=url)
    access = Access(membership=membership, permissions=settings.config.permissions, clock=SystemClock())
    if not (await access.account(person=reader)).in_workspace:
        raise PermissionDenied(f"{incident.ref}: {reader} may not see it (not an active account of this workspace)")
    if await access.can_see(person=reader, incident=incident):
        return
    if not incident.private:
        raise PermissionDenied(
            f"{incident.ref}: {reader} may not see it (a public incident is printed for full members of "
            "the workspace, and for guests only when they are in its channel)"
        )
    why = "" if membership is not None else " (SLACK_BOT_TOKEN is not set, so its channel's members are unknown)"
    raise PermissionDenied(f"{incident.ref} is private and {reader} may not see it{why}: it is printed {rule}")


async def _names(settings: Settings, data: PostmortemData, err: TextIO) -> dict[str, str]:
    """Display names of the people the document names, or {} (IDs are shown) with a note why."""
    wanted = people(data)
    if not wanted:
        return {}
    if settings.slack_bot_token is None:
        print("note: SLACK_BOT_TOKEN is not set, so people are shown by their Slack IDs", file=err)
        return {}
    from bot.slack.adapters.postmortem import names_reader

    reader = names_reader(token=settings.slack_bot_token.get_secret_value(), api_url=settings.slack_api_url)
    names = await reader.user_names(user_ids=wanted)
    missing = [u for u in wanted if u not in names]
    if missing:
        print(f"note: Slack did not name {', '.join(missing)}; shown by ID", file=err)
    return names


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
