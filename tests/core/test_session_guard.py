"""The suite-wide check (tests/session_guard.py) catches a session held across a Slack call, and
only that: a session closed before the call, or held by another task, is fine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text

from bot.db import Database
from tests.fakes.slack_api import FakeSlack
from tests.session_guard import SessionGuard


@pytest.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url)


async def test_a_slack_call_inside_a_session_is_caught(
    db: Database, client: AsyncWebClient, session_guard: SessionGuard
) -> None:
    async with db.session() as session:
        await (await session.connection()).execute(text("SELECT 1"))  # the session holds a connection now
        await client.auth_test()
    caught, session_guard.violations[:] = list(session_guard.violations), []  # (this test's own, on purpose)
    assert len(caught) == 1
    assert caught[0].startswith("Slack auth.test called while this task holds 1 database connection(s)")
    assert "test_a_slack_call_inside_a_session_is_caught" in caught[0]  # where it happened


async def test_the_pagers_own_engine_is_watched_too(
    db: Database, client: AsyncWebClient, session_guard: SessionGuard
) -> None:
    async with db.for_pager().session() as session:
        await (await session.connection()).execute(text("SELECT 1"))
        await client.auth_test()
    caught, session_guard.violations[:] = list(session_guard.violations), []
    assert len(caught) == 1


async def test_a_call_after_the_session_or_in_another_task_is_fine(
    db: Database, client: AsyncWebClient, session_guard: SessionGuard
) -> None:
    async with db.session() as session:
        await (await session.connection()).execute(text("SELECT 1"))
    await client.auth_test()

    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.session() as session:
            await (await session.connection()).execute(text("SELECT 1"))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    await client.auth_test()  # this task holds nothing: another task's session is its own business
    release.set()
    await holder
    assert session_guard.violations == []


async def test_a_bot_task_taking_a_second_connection_while_holding_one_is_caught(
    db: Database, session_guard: SessionGuard
) -> None:
    async def nested() -> None:  # as bot code would run it: a task of its own, no test frame in its chain
        async with db.session() as outer:
            await (await outer.connection()).execute(text("SELECT 1"))
            async with db.session() as inner:
                await (await inner.connection()).execute(text("SELECT 1"))

    nested.__code__ = nested.__code__.replace(co_filename="/srv/bot/escalation/flows.py")
    await asyncio.create_task(nested())
    caught, session_guard.violations[:] = list(session_guard.violations), []
    assert len(caught) == 1 and caught[0].startswith("a second database connection taken while holding one")
