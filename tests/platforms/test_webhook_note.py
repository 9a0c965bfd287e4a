"""A deploy webhook receiver's `meta.note`: its own words on a deployment's state, shown in every progress
update and carried into the report. A receiver could send anything there, at any length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.platforms.follow import Progress, follow
from bot.platforms.webhook import NOTE_LIMIT
from tests.fakes.webhook import FakeWebhook
from tests.platforms.helpers import FakeTimer, client_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebhook]:
    server = FakeWebhook()
    await server.start()
    server.seed(["v1", "v2"])
    yield server
    await server.stop()
    assert not server.violations, server.violations


async def test_a_huge_note_is_cut_to_one_short_line(fake: FakeWebhook, http: httpx.AsyncClient) -> None:
    """A receiver that put its whole deploy log in the note: it was shown in full in every progress update,
    and carried into the report, the audit log and the timeline."""
    fake.note = "waiting for approval\n\n" + "x" * 100_000
    client = client_for("webhook", fake, http)

    handle = await client.restart()

    note = handle.meta["note"]
    assert len(note) == NOTE_LIMIT == 200 and note.endswith("…"), len(note)
    assert note.startswith("waiting for approval xxx") and "\n" not in note


@pytest.mark.parametrize("sent", [42, {"text": "approve"}, ["a"], "   \n ", ""])
async def test_a_note_that_is_not_text_is_dropped(fake: FakeWebhook, http: httpx.AsyncClient, sent: Any) -> None:
    fake.note = sent
    client = client_for("webhook", fake, http)

    handle = await client.restart()

    assert "note" not in handle.meta and handle.meta["version"] == "v2"


async def test_the_note_is_what_the_follow_shows(fake: FakeWebhook, http: httpx.AsyncClient) -> None:
    fake.note = "held  for\tthe 14:00 deploy window"
    fake.stall()
    client = client_for("webhook", fake, http)
    shown: list[str] = []

    async def seen(update: Progress) -> None:
        shown.append(update.note)

    result = await follow(client, await client.restart(), deadline=30, timer=FakeTimer(), on_progress=seen)

    assert result.timed_out
    assert set(shown) - {""} == {"held for the 14:00 deploy window"}, shown  # "" before the first look
    assert result.deployment.meta["note"] == "held for the 14:00 deploy window"
