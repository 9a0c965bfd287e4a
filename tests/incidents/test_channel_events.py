"""What a person does to the incident's channel itself (rename it, archive it) reaches the bot's records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import FakeClock, utc
from bot.slack.blocks import ActionId
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot


async def test_a_channel_renamed_by_a_person_is_the_name_the_bot_keeps(bot: BotHarness) -> None:
    """The rename's message (subtype `channel_name`) was dropped: the post-mortem, pages and the archive
    notice kept naming a channel that no longer exists under that name."""
    incident = await bot.declare("P1 Checkout down")
    channel, old = incident.channel_id, incident.channel_name
    assert channel and old
    renamed = {
        "type": "message",
        "subtype": "channel_name",
        "channel": channel,
        "user": "U0BOB",
        "name": "inc-1-checkout-cert-expired",
        "old_name": old,
        "text": "renamed the channel",
        "ts": "1790000000.000700",
    }
    first = await bot.event(renamed, event_id="Ev900")
    retry = await bot.event(renamed, event_id="Ev900", retry_num=1)
    assert first.status_code == retry.status_code == 200
    assert (await bot.incident(1)).channel_name == "inc-1-checkout-cert-expired"
    lines = [(e.actor, e.text) for e in await bot.timeline(1) if "renamed" in e.text]
    assert lines == [("U0BOB", f"channel renamed #{old} → #inc-1-checkout-cert-expired")]
    # A rename of some other channel touches no incident.
    await bot.event({**renamed, "channel": "C0GENERAL", "name": "random2"})
    assert (await bot.incident(1)).channel_name == "inc-1-checkout-cert-expired"


async def test_the_channel_archived_by_a_person_while_open_is_a_key_event(bot: BotHarness) -> None:
    """A person archiving the open incident's channel left no trace: every notice after it failed
    (is_archived) and the post-mortem did not say why the channel went silent."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    bot.fake.channels[channel].archived = True
    archive = {
        "type": "message",
        "subtype": "channel_archive",
        "channel": channel,
        "user": "U0BOB",
        "text": "archived the channel",
        "ts": "1790000000.000900",
    }
    await bot.event(archive, event_id="Ev910")
    await bot.event(archive, event_id="Ev910", retry_num=1)
    await bot.event({**archive, "subtype": "channel_unarchive", "ts": "1790000000.001000"}, event_id="Ev911")
    # The notice's outcome (tests/incidents/test_channel_archived_while_open.py) is a line of its own.
    changes = [e for e in await bot.timeline(1) if e.data.get("step") in ("archived", "unarchived")]
    lines = [(e.actor, e.text, e.key) for e in changes]
    assert lines == [
        ("U0BOB", "channel archived while the incident was open: the bot can no longer post in it", True),
        ("U0BOB", "channel unarchived", False),
    ]


async def test_a_person_added_to_a_private_incident_s_channel_may_act_at_once(bot: BotHarness) -> None:
    """Refused once before being added (the channel's members cached), a person added to the private
    channel in Slack was still told the incident does not exist for up to a minute."""
    incident = await bot.declare("private P1 Payroll export mailed to the wrong team")
    channel, number = incident.channel_id, incident.id
    assert channel and number and incident.private
    hidden = f"There is no incident INC-{number} that you can see"
    await bot.click(ActionId.ACK, str(number), user="U0BOB", channel=channel, message_ts=incident.summary_ts)
    assert hidden in bot.last_reply()
    bot.fake.channels[channel].members.add("U0BOB")  # Alice adds Bob in Slack
    joined = {"type": "message", "subtype": "channel_join", "channel": channel, "user": "U0BOB", "ts": "1790000000.1"}
    await bot.event({**joined, "text": "<@U0BOB> has joined the channel", "inviter": "U0ALICE"})
    await bot.click(ActionId.ACK, str(number), user="U0BOB", channel=channel, message_ts=incident.summary_ts)
    assert (await bot.incident(number)).acknowledged_by == "U0BOB"
    # Removed again: refused at once too.
    bot.fake.channels[channel].members.discard("U0BOB")
    await bot.event({**joined, "subtype": "channel_leave", "ts": "1790000000.2", "text": "left"})
    await bot.command(f"INC-{number} note still here?", user="U0BOB", channel="C0GENERAL")
    assert hidden in bot.last_reply()


async def test_an_event_without_a_time_slack_can_say_is_dated_by_the_injected_clock(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Without a `ts` (or with one that is not a time) the event was dated by the wall clock, not the bot's
    clock: out of order with every other event of a test, a demo or a replayed incident."""
    clock = FakeClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        incident = await bot.declare("P1 Checkout down")
        channel, old = incident.channel_id or "", incident.channel_name
        clock.advance(timedelta(minutes=7))
        renamed = {"type": "message", "subtype": "channel_name", "channel": channel, "user": "U0BOB"}
        await bot.event({**renamed, "name": "inc-1-checkout-cert", "old_name": old, "text": "renamed"})
        said = {"type": "message", "channel": channel, "user": "U0BOB", "text": "cert expired", "ts": "inf"}
        await bot.event(said)
        events = {e.text: e.at for e in await bot.timeline(1)}
    expected = datetime(2026, 11, 20, 9, 7)
    assert utc(events[f"channel renamed #{old} → #inc-1-checkout-cert"]) == utc(expected)
    assert utc(events["cert expired"]) == utc(expected)  # stored, not lost to an OverflowError
