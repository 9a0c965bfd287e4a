"""Drive the real bot over HTTP with signed Slack requests, against the fake Slack Web API.

The bot acks first and works after the ack, so `settle()` waits for every task the request
started (tracked with a task factory) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot import wiring
from bot.deps import Deps
from bot.incidents.models import Incident
from bot.server import build_web_app
from bot.settings import Settings
from bot.tasks import TaskTracker
from bot.timeline import service as timeline
from bot.timeline.models import TimelineEvent
from tests import slack_requests as req
from tests.fakes.slack_api import FakeSlack

SECRET = "test-signing-secret"
_ids = itertools.count(1)


class BotHarness:
    def __init__(
        self, *, fake: FakeSlack, settings: Settings, deps: Deps, app: AsyncApp, url: str, tracker: TaskTracker
    ) -> None:
        self.fake = fake
        self.app = app
        self.settings = settings
        self.deps = deps
        self.url = url
        self.tracker = tracker
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    # --- requests ----------------------------------------------------------------------------

    async def post(self, body: str, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(f"{self.url}/slack/events", content=body.encode(), headers=headers)

    async def command(
        self,
        text: str,
        *,
        command: str = "/incident",
        user: str = "U0ALICE",
        channel: str = "C0GENERAL",
        settle: bool = True,
    ) -> httpx.Response:
        key = f"cmd{next(_ids)}"
        body, headers = req.slash_command(
            command,
            text,
            secret=SECRET,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(key, channel_id=channel, user_id=user),
            trigger_id=f"trig-{key}",
        )
        response = await self.post(body, headers)
        if settle:
            await self.settle()
        return response

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ALICE",
        channel: str | None = None,
        message_ts: str | None = None,
        settle: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        key = f"act{next(_ids)}"
        body, headers = req.block_actions(
            action_id,
            value,
            secret=SECRET,
            user_id=user,
            channel_id=channel,
            message_ts=message_ts,
            response_url=self.fake.response_url(key, channel_id=channel, user_id=user, message_ts=message_ts),
            trigger_id=f"trig-{key}",
            **kwargs,
        )
        response = await self.post(body, headers)
        if settle:
            await self.settle()
        return response

    async def submit(
        self,
        callback_id: str,
        values: dict[str, Any],
        *,
        user: str = "U0ALICE",
        private_metadata: str = "",
        settle: bool = True,
    ) -> httpx.Response:
        body, headers = req.view_submission(
            callback_id, values, secret=SECRET, user_id=user, private_metadata=private_metadata
        )
        response = await self.post(body, headers)
        if settle:
            await self.settle()
        return response

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None, settle: bool = True
    ) -> httpx.Response:
        body, headers = req.event_callback(
            event,
            secret=SECRET,
            event_id=event_id or f"Ev{next(_ids)}",
            retry_num=retry_num,
            retry_reason="http_timeout" if retry_num else None,
        )
        response = await self.post(body, headers)
        if settle:
            await self.settle()
        return response

    async def settle(self, within: float = 15.0) -> None:
        await self.tracker.settle(within)

    # --- reading state -----------------------------------------------------------------------

    async def incident(self, number: int) -> Incident:
        async with self.deps.db.session() as session:
            found = await session.get(Incident, number)
            assert found is not None, f"INC-{number} not in the database"
            return found

    async def timeline(self, number: int) -> list[TimelineEvent]:
        async with self.deps.db.session() as session:
            return await timeline.events(session, incident_id=number)

    def replies(self) -> list[str]:
        """Texts the bot sent through response_url (ephemeral replies and in-channel responses)."""
        out = []
        for body in self.fake.responses:
            text = body.get("text") or ""
            for block in body.get("blocks") or []:
                section = block.get("text")
                if isinstance(section, dict):
                    text += "\n" + section.get("text", "")
            out.append(text)
        return out

    def last_reply(self) -> str:
        replies = self.replies()
        assert replies, "the bot replied nothing"
        return replies[-1]

    async def declare(self, text: str = "P1 Checkout is down", *, user: str = "U0ALICE") -> Incident:
        response = await self.command(f"declare {text}", user=user)
        assert response.status_code == 200, response.text
        async with self.deps.db.session() as session:
            from sqlmodel import col, select

            result = await session.exec(select(Incident).order_by(col(Incident.id).desc()))
            incident = result.first()
        assert incident is not None, f"nothing declared; replies: {self.replies()}"
        return incident

    async def close(self) -> None:
        await self.http.aclose()


async def start_bot(
    *,
    fake: FakeSlack,
    settings: Settings,
    customize: Callable[[Deps], Awaitable[None] | None] | None = None,
    **build_kwargs: Any,
) -> tuple[BotHarness, Callable[[], Awaitable[None]]]:
    loop = asyncio.get_running_loop()
    tracker = TaskTracker(loop)
    deps, app = wiring.build(settings, **build_kwargs)
    if customize is not None:
        result = customize(deps)
        if result is not None:
            await result
    await wiring.start(deps)
    # The start-up sweeps (resume setups, close interrupted deploys) have run before a test writes rows
    # they would act on: otherwise a slow first sweep races the test for its own rows.
    for sweep in (deps.setup_sweep, deps.ops_sweep):
        if sweep is not None:
            await asyncio.wait_for(sweep.ran.wait(), 30)
    runner = web.AppRunner(build_web_app(deps, app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    tracker.install()
    # Work the start hooks left running (the escalation catch-up) counts as background work too.
    for task in deps.background.tasks:
        tracker.tasks.add(task)
        task.add_done_callback(tracker.tasks.discard)
    harness = BotHarness(
        fake=fake, settings=settings, deps=deps, app=app, url=f"http://127.0.0.1:{port}", tracker=tracker
    )

    async def stop() -> None:
        try:
            await harness.settle(within=10)
        finally:
            tracker.uninstall()
            await harness.close()
            await runner.cleanup()
            await wiring.stop(deps)

    return harness, stop


@asynccontextmanager
async def running_bot(*, fake: FakeSlack, settings: Settings, **kwargs: Any) -> AsyncIterator[BotHarness]:
    """`start_bot` as a context: the bot, stopped (after its work settles) on the way out."""
    harness, stop = await start_bot(fake=fake, settings=settings, **kwargs)
    try:
        yield harness
    finally:
        await stop()


def free_port() -> int:
    """A local TCP port nothing listens on, for a server a test starts as a process.

    Picked below Linux's ephemeral range (32768-60999): a port the kernel handed out for `bind(0)` is
    soon handed out again as the source port of an outgoing connection, and with the SQLite and
    PostgreSQL suites side by side that happened between the pick and the bot's bind."""
    for _ in range(200):
        port = random.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32767")


async def until(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Until `predicate()` is true: for work that runs after an ack, or while a Slack call is held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def slack_date(at: datetime, *, seconds: bool = False) -> str:
    """The date token Slack shows in each reader's own time zone, UTC as its fallback: written out here,
    not taken from the bot, so a test sees the markup Slack gets."""
    at = at.astimezone(UTC)
    shown, fallback = ("{time_secs}", f"{at:%Y-%m-%d %H:%M:%S}") if seconds else ("{time}", f"{at:%Y-%m-%d %H:%M}")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {shown}|{fallback} UTC>"
