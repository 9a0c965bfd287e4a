"""What the fault, fuzz and replica tests share: watching the bot's error log, reading what it sent,
and taking the database away for a moment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deps import Deps
from tests.fakes.slack_api import FakeSlack

# Methods whose text reaches people's screens (and notifications).
MESSAGE_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral")
# Broadcast and mention syntax that must never come from text a user typed.
_BROADCAST = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>|<!subteam\^[A-Z0-9]+(\|[^>]*)?>")


class ErrorLog(logging.Handler):
    """Collects records at ERROR or above from the bot's loggers (``bot.*``, Bolt's included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> str:
        out = []
        for record in self.records:
            line = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            out.append(line)
        return "\n".join(out)


@contextmanager
def bot_errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logger = logging.getLogger("bot")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@dataclass(frozen=True)
class Sent:
    """One piece of mrkdwn the bot sent: where, and the text."""

    where: str
    text: str


def _mrkdwn_in(value: Any, where: str) -> Iterator[Sent]:
    """mrkdwn text objects inside blocks; plain_text is shown literally by Slack, so it is skipped."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield Sent(where, value["text"])
        for child in value.values():
            yield from _mrkdwn_in(child, where)
    elif isinstance(value, list):
        for child in value:
            yield from _mrkdwn_in(child, where)


def sent_texts(fake: FakeSlack, *, acks: list[str] = ()) -> list[Sent]:  # type: ignore[assignment]
    """Every message text (the notification text) and mrkdwn block the bot sent to Slack or a response_url.

    ``acks`` are the bodies of the bot's HTTP answers (a slash command can reply in its ack).
    """
    out: list[Sent] = []
    for call in fake.calls:
        if call.method not in MESSAGE_METHODS:
            continue
        where = f"{call.method} to {call.args.get('channel')}"
        if isinstance(call.args.get("text"), str):
            out.append(Sent(where, call.args["text"]))
        out.extend(_mrkdwn_in(call.args.get("blocks"), where))
    for body in fake.responses:
        where = f"response_url {body.get('key')}"
        if isinstance(body.get("text"), str):
            out.append(Sent(where, body["text"]))
        out.extend(_mrkdwn_in(body.get("blocks"), where))
    import json

    for i, raw in enumerate(acks):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            continue
        if isinstance(body, dict):
            if isinstance(body.get("text"), str):
                out.append(Sent(f"ack {i}", body["text"]))
            out.extend(_mrkdwn_in(body.get("blocks"), f"ack {i}"))
    return out


def injected(text: str, *, users: tuple[str, ...] = ()) -> list[str]:
    """Broadcasts, and mentions of ``users``, that Slack would render live in ``text``."""
    found = [m.group(0) for m in _BROADCAST.finditer(text)]
    for user in users:
        found += re.findall(rf"<@{user}(?:\|[^>]*)?>", text)
    return found


class DatabaseOutage:
    """Point the bot's engines and sessions (the pager's own included) at a database that refuses
    connections, and back.

    Deterministic: every query while it is down fails at connect time with the driver's real error,
    as when PostgreSQL restarts or a SQLite file's volume goes away. Sessions opened before the
    outage keep their connection, as they would.
    """

    def __init__(self, deps: Deps, unreachable_url: str) -> None:
        self.dbs = [deps.db, deps.db.for_pager()]
        self.saved = [(db.engine, db.sessions) for db in self.dbs]
        self.broken = create_async_engine(unreachable_url)
        self.down = False

    def start(self) -> None:
        for db in self.dbs:
            db.engine = self.broken
            db.sessions = async_sessionmaker(self.broken, class_=AsyncSession, expire_on_commit=False)
        self.down = True

    def end(self) -> None:
        for db, (engine, sessions) in zip(self.dbs, self.saved, strict=True):
            db.engine, db.sessions = engine, sessions
        self.down = False

    async def close(self) -> None:
        self.end()
        await self.broken.dispose()

    @contextmanager
    def window(self) -> Iterator[None]:
        self.start()
        try:
            yield
        finally:
            self.end()


def unreachable_url(database_url: str, tmp_dir: str) -> str:
    if database_url.startswith("postgres"):
        # Port 9 (discard) is closed on loopback: connection refused at once.
        return "postgresql+psycopg://postgres@127.0.0.1:9/gone?connect_timeout=2"
    return f"sqlite+aiosqlite:///{tmp_dir}/no-such-volume/bot.db"


async def count(deps: Deps, model: Any, *where: Any) -> int:
    async with deps.db.session() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int((await session.exec(query)).one())


def unpace_channel_creation(deps: Deps) -> None:
    """Lift the adapter's conversations.create pacing (20/min, Slack's tier 2) for tests of other things.

    The fake Slack enforces no limit unless asked to, and a test that declares more than the pacer's
    burst would otherwise wait 3 s per extra channel. Reaches into the Slack adapter: keep in step with
    bot/slack/adapters/incidents.py (a setting for the rate would make this unnecessary).
    """
    from bot.slack.adapters.incidents import Pacer

    chat = deps.chat
    if chat is not None and hasattr(chat, "create_pacer"):
        chat.create_pacer = Pacer(limit=1_000_000, window=1.0)


class OutageAfterChannel:
    """The incident chat port, unchanged, except that the database goes away once Slack made the channel."""

    def __init__(self, real: Any, outage: DatabaseOutage) -> None:
        self.real = real
        self.outage = outage

    async def create_channel(self, **kwargs: Any) -> Any:
        channel = await self.real.create_channel(**kwargs)
        self.outage.start()
        return channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
