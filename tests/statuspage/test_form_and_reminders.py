"""The *Publish update* button and form, and reminders to publish for P1/P2 incidents."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.slack.blocks import ActionId
from bot.statuspage import reminding, runtime, service
from tests.fakes.slack_api import FakeSlack
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness, until
from tests.statuspage.conftest import StartBot, page_of, public

REMINDER = "the public has heard nothing"


def _buttons(message_blocks: list[dict[str, Any]] | None) -> list[str]:
    return [e.get("action_id", "") for b in message_blocks or [] if b.get("type") == "actions" for e in b["elements"]]


def _form_values(*, impact: str, components: list[str], title: str, message: str) -> dict[str, Any]:
    return {
        "impact": {"value": {"type": "static_select", "selected_option": {"value": impact}}},
        "components": {
            "value": {"type": "multi_static_select", "selected_options": [{"value": c} for c in components]}
        },
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "message": {"value": {"type": "plain_text_input", "value": message}},
    }


async def test_the_summary_button_opens_a_prefilled_form_that_publishes(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    incident = await bot.declare("P2 service:api Card payments time out")
    channel = incident.channel_id or ""
    summary_ts = (await bot.incident(incident.id or 0)).summary_ts
    summary_message = next(m for m in bot.fake.messages(channel) if m.ts == summary_ts)
    assert ActionId.PUBLISH in _buttons(summary_message.blocks)

    await bot.click(ActionId.PUBLISH, str(incident.id), channel=channel)
    form = bot.fake.views[-1]["view"]
    assert form["callback_id"] == "status_page_publish"
    by_id = {b["block_id"]: b for b in form["blocks"]}
    assert by_id["impact"]["element"]["initial_option"]["value"] == "major"  # P2
    assert [o["value"] for o in by_id["components"]["element"]["initial_options"]] == ["Checkout API"]
    assert "initial_value" not in by_id["message"]["element"]  # nothing public yet, and never an internal note

    refused = await bot.submit(
        "status_page_publish",
        _form_values(impact="major", components=[], title="x", message=" "),
        private_metadata=str(incident.id),
    )
    assert refused.json()["response_action"] == "errors" and "message" in refused.json()["errors"]

    values = _form_values(
        impact="critical",
        components=["Checkout API", "Website"],
        title="Checkout and website unavailable",
        message="Payments and the website are unavailable.",
    )
    await bot.submit("status_page_publish", values, private_metadata=str(incident.id))
    summary, html, _ = await public(bot)
    [public_incident] = summary["incidents"]
    assert public_incident["name"] == "Checkout and website unavailable" and public_incident["impact"] == "critical"
    assert {c["name"]: c["status"] for c in summary["components"]} == {
        "Checkout API": "major_outage",
        "Website": "major_outage",
    }
    assert summary["status"]["indicator"] == "critical"
    assert statuspage.calls[-1].body["incident"]["components"] == {"cmp_api": "major_outage", "cmp_web": "major_outage"}

    # The next form starts from the last public update.
    await bot.click(ActionId.PUBLISH, str(incident.id), channel=channel)
    by_id = {b["block_id"]: b for b in bot.fake.views[-1]["view"]["blocks"]}
    assert by_id["message"]["element"]["initial_value"] == "Payments and the website are unavailable."
    assert by_id["impact"]["element"]["initial_option"]["value"] == "critical"
    assert by_id["title"]["element"]["initial_value"] == "Checkout and website unavailable"
    assert len(by_id["components"]["element"]["initial_options"]) == 2
    # A publish dropping a component sets it operational there, and here.
    await bot.command("publish major Website is back; payments still fail.", channel=channel)
    values = _form_values(impact="major", components=["Checkout API"], title="Payments failing", message="Website ok.")
    await bot.submit("status_page_publish", values, private_metadata=str(incident.id))
    summary, _, _ = await public(bot)
    assert {c["name"]: c["status"] for c in summary["components"]}["Website"] == "operational"
    assert statuspage.calls[-1].body["incident"]["components"] == {
        "cmp_api": "partial_outage",
        "cmp_web": "operational",
    }
    assert "Website ok." in json.dumps(summary)


async def test_p1_incidents_are_reminded_to_publish_until_they_do(sbot: BotHarness, clock: FakeClock) -> None:
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    minor = await bot.declare("P3 service:web A typo on the pricing page")
    channel = incident.channel_id or ""
    page = page_of(bot)

    def reminders(where: str) -> list[Any]:
        return [m for m in bot.fake.messages(where) if REMINDER in m.text]

    clock.advance(timedelta(minutes=14))
    await page.sweep()
    assert reminders(channel) == []
    clock.advance(timedelta(minutes=2))
    await page.sweep()
    [first] = reminders(channel)
    assert ActionId.PUBLISH in _buttons(first.blocks) and "<@U0ALICE>" in first.text
    assert reminders(minor.channel_id or "") == []  # P3: no reminders

    await bot.command("publish critical We are investigating.", channel=channel)
    clock.advance(timedelta(minutes=14))
    await page.sweep()
    assert len(reminders(channel)) == 1  # published 14 minutes ago: not yet
    clock.advance(timedelta(minutes=2))
    await page.sweep()
    assert len(reminders(channel)) == 2
    assert [e.data["kind"] for e in await bot.timeline(1) if e.kind == "reminder" and "seq" in e.data] == [
        "public_update",
        "public_update",
    ]

    await bot.command("resolve", channel=channel)
    async with bot.deps.db.session() as session:
        rows = await service.reminders(session, incident_id=incident.id or 0)
    assert all(r.sent_at is not None or r.cancelled_at is not None for r in rows)
    clock.advance(timedelta(hours=1))
    await page.sweep()
    assert len(reminders(channel)) == 2


async def test_a_reminder_is_sent_once_by_racing_senders_and_after_a_restart(
    fake_slack: FakeSlack, clock: FakeClock, start_page_bot: StartBot
) -> None:
    async with start_page_bot() as bot:
        incident = await bot.declare("P1 service:api Payments fail")
        channel = incident.channel_id or ""
        clock.advance(timedelta(minutes=16))
        async with bot.deps.db.session() as session:
            [row] = await service.reminders(session, incident_id=incident.id or 0)
        sent = await asyncio.gather(*(reminding.send_reminder(bot.deps, reminder_id=row.id or 0) for _ in range(3)))
        assert sorted(sent) == [False, False, True]
        assert len([m for m in fake_slack.messages(channel) if REMINDER in m.text]) == 1
    # Down for the next one: the new process reminds on start, once.
    clock.advance(timedelta(minutes=20))
    async with start_page_bot() as bot:
        await bot.settle()
        assert len([m for m in fake_slack.messages(channel) if REMINDER in m.text]) == 2
        async with bot.deps.db.session() as session:
            rows = await service.reminders(session, incident_id=incident.id or 0)
        assert [(r.seq, r.sent_at is not None) for r in rows] == [(0, True), (1, True), (2, False)]


async def test_a_reminder_to_a_channel_archived_by_hand_is_not_retried_every_minute(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """Someone archived the open incident's channel: Slack answers is_archived to every post there. The
    reminder is given up after a few attempts, like a status reminder, and the next one is planned."""
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    bot.fake.channels[channel].archived = True
    page = page_of(bot)
    for _ in range(60):
        clock.advance(timedelta(minutes=1))
        await page.sweep()
    tried = [c for c in bot.fake.calls_to("chat.postMessage") if REMINDER in str(c.args.get("text"))]
    assert len(tried) <= 12, f"{len(tried)} attempts in an hour"
    async with bot.deps.db.session() as session:
        rows = await service.reminders(session, incident_id=incident.id or 0)
    given_up = [r for r in rows if r.cancelled_at is not None]
    assert given_up and all("is_archived" in (r.cancel_reason or "") for r in given_up)
    assert [r.seq for r in rows if r.sent_at is None and r.cancelled_at is None] == [len(rows) - 1]


async def test_no_reminder_to_publish_is_recorded_for_an_incident_without_a_channel(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """The channel's creation failed: nobody is reminded, so neither the timeline nor the row says so."""
    bot = sbot
    bot.fake.fail("conversations.create", "restricted_action", count=1)
    await bot.command("declare P1 service:api Payments fail")
    incident = await bot.incident(1)
    assert incident.channel_id is None
    page = page_of(bot)
    for _ in range(2):
        clock.advance(timedelta(minutes=16))
        await page.sweep()
    assert not [c for c in bot.fake.calls_to("chat.postMessage") if REMINDER in str(c.args.get("text"))]
    assert not [e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]
    async with bot.deps.db.session() as session:
        rows = await service.reminders(session, incident_id=1)
    assert len(rows) == 3 and all(r.sent_at is None for r in rows)
    assert [r.cancel_reason for r in rows] == ["the incident has no channel"] * 2 + [None]


async def test_the_publish_button_and_form_on_a_private_incident_answer_as_for_a_missing_one(sbot: BotHarness) -> None:
    """Someone who may not see a private incident learns nothing from the Publish button's or form's number:
    the refusal is word for word the one for an incident that does not exist."""
    bot = sbot
    bot.fake.add_user("U0MALLORY", "mallory")
    secret = await bot.declare("private P1 service:api Credentials leaked")
    assert secret.private

    def refusal_for(number: int) -> str:
        return f"⚠️ There is no incident INC-{number} that you can see. `/incident list` shows the open incidents."

    for number in (secret.id or 0, 99):
        mark = len(bot.fake.responses)
        await bot.click(ActionId.PUBLISH, str(number), user="U0MALLORY", channel="C0GENERAL")
        assert bot.fake.responses[mark:] == []  # said once, in the form (below), not also as a reply
        values = _form_values(impact="major", components=["Checkout API"], title="t", message="Down.")
        await bot.submit("status_page_publish", values, user="U0MALLORY", private_metadata=str(number))
        assert bot.fake.dms("U0MALLORY")[-1].text == refusal_for(number)
        # The form opened empty at once (the trigger cannot wait for the check) and says only the refusal.
        assert [b["text"]["text"] for v in bot.fake.views[-2:] for b in v["view"]["blocks"]] == [
            "⏳ Loading…",
            refusal_for(number),
        ]
    assert all("callback_id" not in v["view"] for v in bot.fake.views)


async def test_a_reminder_slack_is_slow_to_take_does_not_hold_up_the_pages_rebuilds(
    start_page_bot: StartBot, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep sends reminders through Slack, which throttles in an outage (and the client waits its 429s
    out): the page's own rebuilds, which show another replica's publishes, must not wait behind them."""
    monkeypatch.setattr(runtime, "SWEEP_EVERY", timedelta(seconds=0.2))
    async with start_page_bot() as bot:
        incident = await bot.declare("P1 service:api Payments fail")
        held = bot.fake.hold("chat.postMessage", lambda args: REMINDER in str(args.get("text")))
        clock.advance(timedelta(minutes=16))
        await until(lambda: len(bot.fake.held) == 1)  # the sweep waits on Slack

        async with bot.deps.db.session() as session:  # what another replica publishes meanwhile
            draft = service.Draft(
                title="Major outage: Checkout API",
                status="investigating",
                impact="critical",
                components=["Checkout API"],
                message="We are investigating failed payments.",
            )
            await service.add_update(
                session, incident=incident, draft=draft, actor="U0BOB", now=clock.now(), sync=False
            )

        def shown() -> bool:
            snapshot = page_of(bot).snapshot
            return snapshot is not None and len(snapshot.view.open) == 1

        try:
            await until(shown)
        finally:
            held.set()
        summary, _, _ = await public(bot)
        assert summary["incidents"][0]["incident_updates"][0]["body"] == "We are investigating failed payments."
        await bot.settle()
