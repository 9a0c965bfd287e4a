"""A person archived the open incident's channel: the bot cannot unarchive it (Slack does not let a bot token
call conversations.unarchive), so the person in charge is told by DM, once (with nobody in charge, a public
incident's notice goes to the announcements channel), a private incident's notice stays out of every
channel, and the timeline says who was told, or why nobody was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, send
from tests.harness import BotHarness

NOTICE = "was archived"
PUBLIC = ("C0GENERAL", "C0INCIDENTS", "C0ALERTS")


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {**AUTO}  # a critical alert declares an incident: nobody is in charge of it yet


def archive_event(channel: str, user: str = "U0BOB", ts: str = "1790000000.000900") -> dict[str, Any]:
    return {"type": "message", "subtype": "channel_archive", "channel": channel, "user": user, "text": "", "ts": ts}


async def archived_by(bot: BotHarness, channel: str, user: str = "U0BOB", *, event_id: str = "Ev920") -> None:
    bot.fake.channels[channel].archived = True
    first = await bot.event(archive_event(channel, user), event_id=event_id)
    retry = await bot.event(archive_event(channel, user), event_id=event_id, retry_num=1)
    assert first.status_code == retry.status_code == 200


def notices(bot: BotHarness, user: str) -> list[str]:
    return [m.text for m in bot.fake.dms(user) if NOTICE in m.text]


async def test_the_commander_is_told_once_that_a_person_archived_the_open_incident_s_channel(bot: BotHarness) -> None:
    """Recorded as a key event, but nobody was told: the channel just went silent."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id or ""
    await archived_by(bot, channel)
    [notice] = notices(bot, "U0ALICE")  # the commander (the declarer, by default); Slack's retry tells nobody again
    assert f"<#{channel}> was archived by <@U0BOB> while INC-1 (Checkout down) is open" in notice
    assert "Unarchive it to keep working" in notice
    assert notices(bot, "U0BOB") == []


async def test_nobody_is_told_when_the_person_in_charge_archived_it_or_the_incident_is_resolved(
    bot: BotHarness,
) -> None:
    first = await bot.declare("P1 Checkout down")
    await archived_by(bot, first.channel_id or "", "U0ALICE", event_id="Ev921")
    second = await bot.declare("P2 Search slow")
    await bot.command("resolve fixed", channel=second.channel_id or "")
    await archived_by(bot, second.channel_id or "", event_id="Ev922")
    assert notices(bot, "U0ALICE") == [] and notices(bot, "U0BOB") == []


async def test_a_private_incident_s_notice_names_no_title_and_goes_only_to_one_who_may_see_it(
    bot: BotHarness,
) -> None:
    incident = await bot.declare("private P1 Payroll export mailed to the wrong team")
    channel = incident.channel_id or ""
    bot.fake.channels[channel].members.add("U0BOB")
    await archived_by(bot, channel, event_id="Ev923")
    [notice] = notices(bot, "U0ALICE")
    assert "INC-1 (a private incident)" in notice and "Payroll" not in notice
    for public in PUBLIC:
        seen_by_all = [m.text for m in bot.fake.messages(public) if m.ephemeral_to is None]
        assert not [text for text in seen_by_all if NOTICE in text or "Payroll" in text]

    # The commander, removed from the private channel, may no longer see it: not told.
    second = await bot.declare("private P2 Keys in a public gist")
    other = second.channel_id or ""
    bot.fake.channels[other].members.add("U0BOB")
    bot.fake.channels[other].members.discard("U0ALICE")
    bot.deps.incident_access.forget(channel_id=other)
    await archived_by(bot, other, event_id="Ev924")
    assert len(notices(bot, "U0ALICE")) == 1 and notices(bot, "U0BOB") == []


async def notice_lines(bot: BotHarness, number: int) -> list[str]:
    return [e.text for e in await bot.timeline(number) if e.data.get("step") == "archived notice"]


async def test_with_nobody_in_charge_a_public_incident_s_notice_goes_to_the_announcements_channel(
    bot: BotHarness,
) -> None:
    """Declared by an alert and taken by nobody: no person to DM, so nobody was told at all."""
    await send(bot, p.alertmanager([p.am_alert(severity="critical")]))
    incident = await bot.incident(1)
    assert incident.declared_by == "alertmanager" and incident.commander is None and not incident.private
    channel = incident.channel_id or ""
    await archived_by(bot, channel, event_id="Ev925")
    [notice] = [m.text for m in bot.fake.messages("C0INCIDENTS") if NOTICE in m.text]
    assert f"<#{channel}> was archived by <@U0BOB> while INC-1 (" in notice and "Nobody is in charge" in notice
    assert notices(bot, "U0BOB") == []
    assert await notice_lines(bot, 1) == ["told <#C0INCIDENTS> that the channel was archived"]
    [event] = [e for e in await bot.timeline(1) if e.data.get("step") == "archived notice"]
    assert event.kind == "setup" and event.data["sent_to"] == ["C0INCIDENTS"]


async def test_with_nobody_in_charge_a_private_incident_s_notice_is_posted_nowhere_and_the_timeline_says_so(
    bot: BotHarness,
) -> None:
    # category=security proposes the security-breach playbook, which makes the incident private.
    await send(bot, p.alertmanager([p.am_alert("VaultTokenLeak", severity="critical", category="security")]))
    incident = await bot.incident(1)
    assert incident.private and incident.commander is None and incident.declared_by == "alertmanager"
    channel = incident.channel_id or ""
    await archived_by(bot, channel, event_id="Ev926")
    posted = [str(c.args.get("text") or "") for c in bot.fake.calls_to("chat.postMessage")]
    assert not [text for text in posted if NOTICE in text]  # not in a channel, nor in a DM (nobody to DM)
    for public in PUBLIC:
        assert not [m.text for m in bot.fake.messages(public) if NOTICE in m.text or channel in m.text]
    [line] = await notice_lines(bot, 1)
    assert line.startswith("nobody was told the channel was archived: nobody is in charge, and a private")


async def test_a_refused_dm_is_on_the_timeline_with_slack_s_reason(bot: BotHarness) -> None:
    """Slack's refusal was only logged: the timeline (and the post-mortem) said nothing of the notice."""
    incident = await bot.declare("P1 Checkout down")
    bot.fake.fail("chat.postMessage", "cannot_dm_bot")
    await archived_by(bot, incident.channel_id or "", event_id="Ev927")
    assert notices(bot, "U0ALICE") == []
    [line] = await notice_lines(bot, 1)
    assert line == "telling <@U0ALICE> that the channel was archived failed: Slack answered cannot_dm_bot"
    [event] = [e for e in await bot.timeline(1) if e.data.get("step") == "archived notice"]
    assert event.kind == "chat_error" and event.data["code"] == "cannot_dm_bot"

    # Told, it says whom.
    second = await bot.declare("P2 Search slow")
    await archived_by(bot, second.channel_id or "", event_id="Ev928")
    assert await notice_lines(bot, 2) == ["told <@U0ALICE> that the channel was archived"]
