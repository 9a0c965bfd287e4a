"""Correcting the last public update and withdrawing a public incident, through the real app: every public
output, the timeline, the channel and Atlassian Statuspage after each."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import select

from bot.clock import FakeClock
from bot.incidents.models import Incident
from bot.statuspage.models import PublicUpdate
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import public

TYPO = "We are investigating failed paymnts on db-primary-3."
FIXED = "We are investigating failed payments."


async def _declare(bot: BotHarness, text: str) -> Incident:
    incident = await bot.declare(text)
    assert incident.channel_id, bot.replies()
    return incident


def _paths(statuspage: FakeStatuspage) -> list[tuple[str, str]]:
    return [(c.method, c.path.split("/pages/pg_test", 1)[1]) for c in statuspage.calls]


async def test_edit_corrects_the_last_update_everywhere_and_keeps_its_time(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    incident = await _declare(bot, "P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command(f"publish major {TYPO}", channel=channel)
    before, _, _ = await public(bot)
    [update] = before["incidents"][0]["incident_updates"]
    clock.advance(timedelta(minutes=7))

    await bot.command(f"publish edit {FIXED}", channel=channel, user="U0BOB")
    assert "Corrected the last status page update" in bot.last_reply(), bot.replies()
    summary, html, atom = await public(bot)
    [corrected] = summary["incidents"][0]["incident_updates"]
    assert corrected["body"] == FIXED and corrected["id"] == update["id"]
    assert corrected["created_at"] == update["created_at"] and corrected["display_at"] == update["display_at"]
    assert corrected["updated_at"] != update["updated_at"]
    assert summary["incidents"][0]["impact"] == "major"
    for output in (json.dumps(summary), html, atom):
        assert "paymnts" not in output and "db-primary-3" not in output
        assert FIXED in output
    assert atom.count("<entry>") == 1

    async with bot.deps.db.session() as session:
        [row] = (await session.exec(select(PublicUpdate))).all()
    assert (row.message, row.edited_by, row.published_by) == (FIXED, "U0BOB", "U0ALICE")
    [edit] = [e for e in await bot.timeline(incident.id or 0) if e.data.get("change") == "edited"]
    assert edit.actor == "U0BOB" and edit.data["previous"] == TYPO and edit.data["update_id"] == row.id
    told = [m.text for m in bot.fake.messages(channel) if "corrected the last status page update" in m.text]
    assert len(told) == 1 and "paymnts" in told[0]  # the channel sees what it read before

    # Statuspage: the same incident update's body, corrected in place; no new update, no notification.
    assert statuspage.refused == []
    record = statuspage.incidents["inc0001"]
    assert [u["body"] for u in record.updates] == [FIXED]
    assert _paths(statuspage) == [
        ("POST", "/incidents"),
        ("PATCH", f"/incidents/inc0001/incident_updates/{record.updates[0]['id']}"),
    ]
    assert statuspage.calls[-1].body == {"incident_update": {"body": FIXED, "deliver_notifications": False}}


async def test_edit_refuses_mentions_nothing_published_and_private_incidents(sbot: BotHarness) -> None:
    bot = sbot
    incident = await _declare(bot, "P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command(f"publish edit {FIXED}", channel=channel)
    assert "nothing on the status page to correct" in bot.last_reply()
    await bot.command(f"publish major {TYPO}", channel=channel)
    await bot.command("publish edit Ask <@U0BOB|bob> about payments", channel=channel)
    assert "names @bob" in bot.last_reply()
    await bot.command("publish edit", channel=channel)
    assert "Write the corrected public message" in bot.last_reply()
    secret = await _declare(bot, "private P1 Credentials leaked")
    await bot.command(f"publish edit {FIXED}", channel=secret.channel_id or "")
    assert "private incidents never go on the status page" in bot.last_reply()
    summary, _, _ = await public(bot)
    assert [u["body"] for u in summary["incidents"][0]["incident_updates"]] == [TYPO]


async def test_unpublish_withdraws_the_incident_from_every_output_and_deletes_it_on_statuspage(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    wrong = await _declare(bot, "P1 service:api Payments fail")
    other = await _declare(bot, "P3 service:api Slow receipts")
    await bot.command("publish minor Receipts are slow to arrive.", channel=other.channel_id or "")
    await bot.command("publish critical Checkout is down for everyone.", channel=wrong.channel_id or "")
    summary, _, _ = await public(bot)
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "major_outage"

    await bot.command("unpublish", channel=wrong.channel_id or "", user="U0BOB")
    assert "Withdrew" in bot.last_reply(), bot.replies()
    summary, html, atom = await public(bot)
    assert [i["name"] for i in summary["incidents"]] == ["Degraded performance: Checkout API"]
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "degraded_performance"
    assert summary["status"]["indicator"] == "minor"
    for output in (json.dumps(summary), html, atom):
        assert "Checkout is down for everyone" not in output and "Major outage: Checkout API" not in output
    assert atom.count("<entry>") == 1

    [event] = [e for e in await bot.timeline(wrong.id or 0) if e.data.get("change") == "withdrawn"]
    assert event.actor == "U0BOB" and event.data["previous"] == "Checkout is down for everyone."
    assert any("withdrew" in m.text for m in bot.fake.messages(wrong.channel_id or ""))

    # Statuspage: the component back to what the other open incident says, then the incident deleted.
    assert statuspage.refused == []
    assert _paths(statuspage)[-2:] == [("PATCH", "/incidents/inc0002"), ("DELETE", "/incidents/inc0002")]
    assert statuspage.calls[-2].body["incident"]["components"] == {"cmp_api": "degraded_performance"}
    assert "body" not in statuspage.calls[-2].body["incident"]
    assert set(statuspage.incidents) == {"inc0001"} and statuspage.components["cmp_api"] == "degraded_performance"

    # Resolving it later publishes nothing: the public never saw it.
    await bot.command("resolve rolled back", channel=wrong.channel_id or "")
    await bot.settle()
    summary, html, _ = await public(bot)
    assert "Checkout is down for everyone" not in html
    async with bot.deps.db.session() as session:
        rows = (await session.exec(select(PublicUpdate).where(PublicUpdate.incident_id == wrong.id))).all()
    assert [(r.status, r.withdrawn_by) for r in rows] == [("investigating", "U0BOB")]
    assert set(statuspage.incidents) == {"inc0001"}


async def test_unpublish_is_refused_a_day_after_the_resolution_and_on_what_was_never_public(
    sbot: BotHarness, clock: FakeClock
) -> None:
    bot = sbot
    incident = await _declare(bot, "P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command("unpublish", channel=channel)
    assert "not on the status page" in bot.last_reply()
    await bot.command("publish major Payments fail.", channel=channel)
    await bot.command("resolve fixed", channel=channel)
    await bot.settle()
    clock.advance(timedelta(days=1, minutes=1))
    await bot.command("unpublish", channel=channel)
    assert "resolved more than a day ago" in bot.last_reply()
    await bot.command("publish edit Payments failed.", channel=channel)
    assert "resolved more than a day ago" in bot.last_reply()
    _, html, _ = await public(bot)
    assert "Payments fail." in html
