"""The summary's buttons answer truly: a click by someone who may see the incident acts on it, wherever
the bot's message with the button is in its own channel; a click that would act on another incident
than its message is about is refused, and says so."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.ops.models import AuditLog
from bot.slack.blocks import ActionId, CallbackId
from tests.fault.support import DatabaseOutage, unreachable_url
from tests.harness import BotHarness, until
from tests.incidents.test_setup_races import written


@pytest.fixture
async def outage(bot: BotHarness, database_url: str, tmp_path: Path) -> AsyncIterator[DatabaseOutage]:
    down = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    yield down
    await down.close()


async def test_the_summary_acts_before_its_setup_has_recorded_it(bot: BotHarness) -> None:
    """The setup writes the summary's ts last, with the announcement's: a responder who pressed Acknowledge
    on the summary meanwhile (a slow or throttled announcement) was told there was no INC-1 they could see."""
    gate = bot.fake.hold("chat.postMessage", lambda args: args.get("channel") == "C0INCIDENTS")
    try:
        await bot.command("declare P1 Checkout is down", settle=False)
        await until(lambda: bot.fake.held)  # the summary is posted; the announcement waits
        incident = await bot.incident(1)
        channel = incident.channel_id or ""
        summary = next(m for m in bot.fake.messages(channel) if m.text.startswith("INC-1 [P1]"))
        assert incident.summary_ts is None  # not recorded yet
        await bot.click(ActionId.ACK, "1", user="U0BOB", channel=channel, message_ts=summary.ts, settle=False)
        await written(bot, lambda incident: incident.acknowledged_by == "U0BOB")
    finally:
        gate.set()
    await bot.settle()
    assert not [r for r in bot.replies() if "no incident" in r]
    assert (await bot.incident(1)).summary_ts == summary.ts


async def test_a_second_summary_left_in_the_channel_still_acts(bot: BotHarness) -> None:
    """A summary posted again that could not be deleted (or one from an interrupted setup) carries the same
    buttons: the incident is re-read and the clicker's access checked, the message does not decide."""
    incident = await bot.declare("P2 Search is slow")
    channel = incident.channel_id or ""
    await bot.click(ActionId.RESOLVE, "1", user="U0BOB", channel=channel, message_ts="1790000000.000100")
    assert [v["view"].get("callback_id") for v in bot.fake.views] == [None, CallbackId.RESOLVE]  # empty, then filled
    assert not [r for r in bot.replies() if "no incident" in r]


async def test_a_button_on_another_incidents_message_says_why_nothing_was_done(bot: BotHarness) -> None:
    """Bob may see INC-2: "no incident INC-2 that you can see" was untrue. He is told why the click did nothing
    and how to act on INC-2; the refusal is audited."""
    first = await bot.declare("P2 Search is slow")
    second = await bot.declare("P3 Emails delayed")
    # Acknowledge on INC-1's summary, with a value naming INC-2.
    await bot.click(ActionId.ACK, str(second.id), user="U0BOB", channel=first.channel_id, message_ts=first.summary_ts)
    reply = bot.last_reply()
    assert "no incident" not in reply
    assert reply.startswith("⚠️ This button names INC-2, but it is on a message in another incident's channel")
    assert "`/incident INC-2 …`" in reply
    assert (await bot.incident(second.id or 0)).acknowledged_by is None
    assert (await bot.incident(first.id or 0)).acknowledged_by is None
    async with bot.deps.db.session() as session:
        rows = list((await session.exec(select(AuditLog))).all())
    assert [(r.actor, r.action, r.outcome, r.incident_id) for r in rows] == [
        ("U0BOB", "click:acknowledge", "refused", second.id)
    ]
    assert "INC-1's channel" in rows[0].detail


@pytest.mark.parametrize("action", [ActionId.UPDATE, ActionId.RESOLVE])
async def test_the_form_opens_while_the_access_check_waits_on_slack(bot: BotHarness, action: str) -> None:
    """Slack's trigger expires 3 s after the click, and the access check before the form may wait on Slack
    (users.info, a private channel's members): the form waited for it, and a slow Slack meant "try again"."""
    incident = await bot.declare("P2 Search is slow")
    bot.fake.add_user("U0CAROL", "carol")  # not read yet: the check asks Slack about her
    gate = bot.fake.hold("users.info", lambda args: args.get("user") == "U0CAROL")
    try:
        await bot.click(action, str(incident.id), user="U0CAROL", channel=incident.channel_id, settle=False)
        await until(lambda: bot.fake.held)
        await until(lambda: bot.fake.views)  # opened with the click's trigger while users.info is unanswered
        [opened] = bot.fake.views
        assert opened["method"] == "views.open" and opened["trigger_id"].startswith("trig-")
        assert "callback_id" not in opened["view"]  # nothing in it before the check
    finally:
        gate.set()
    await bot.settle()
    filled = bot.fake.views[-1]
    assert filled["method"] == "views.update" and filled["view_id"] == opened["view_id"]
    assert (
        filled["view"]["callback_id"]
        == {ActionId.UPDATE: CallbackId.UPDATE, ActionId.RESOLVE: CallbackId.RESOLVE}[action]
    )


@pytest.mark.parametrize("action", [ActionId.UPDATE, ActionId.RESOLVE])
async def test_a_refused_form_says_why_once_in_the_form(bot: BotHarness, action: str) -> None:
    """The refusal replaced the placeholder and was also sent as an ephemeral reply: said twice."""
    incident = await bot.declare("P2 Search is slow")
    await bot.command("resolve fixed", channel=incident.channel_id or "")
    mark = len(bot.fake.responses)
    await bot.click(action, str(incident.id), user="U0BOB", channel=incident.channel_id)
    assert bot.fake.responses[mark:] == []
    opened, filled = bot.fake.views[-2:]
    assert opened["method"] == "views.open" and filled["method"] == "views.update"
    assert filled["view_id"] == opened["view_id"] and "callback_id" not in filled["view"]
    assert [b["text"]["text"] for b in filled["view"]["blocks"]] == ["⚠️ INC-1 is resolved already."]


@pytest.mark.parametrize("refused", [False, True], ids=["form", "refusal"])
async def test_a_form_closed_before_it_is_filled_is_left_closed_quietly(bot: BotHarness, refused: bool) -> None:
    """Closing the Loading… form before the access check ended got an ephemeral "Slack answered not_found"."""
    incident = await bot.declare("P2 Search is slow")
    if refused:
        await bot.command("resolve fixed", channel=incident.channel_id or "")
    mark = len(bot.fake.responses)
    bot.fake.add_user("U0CAROL", "carol")  # not read yet: the check asks Slack about her
    gate = bot.fake.hold("users.info", lambda args: args.get("user") == "U0CAROL")
    try:
        await bot.click(ActionId.UPDATE, str(incident.id), user="U0CAROL", channel=incident.channel_id, settle=False)
        await until(lambda: bot.fake.held and bot.fake.views[-1]["method"] == "views.open")
        bot.fake.close_view(bot.fake.views[-1]["view_id"])
    finally:
        gate.set()
    await bot.settle()
    assert [c.response.get("error") for c in bot.fake.calls_to("views.update")] == ["not_found"]
    assert bot.fake.responses[mark:] == []


@pytest.mark.parametrize("shown", [True, False], ids=["notice shown", "form gone too"])
async def test_an_unexpected_error_building_a_form_is_logged_once(
    bot: BotHarness, outage: DatabaseOutage, caplog: pytest.LogCaptureFixture, shown: bool
) -> None:
    """The database fails while the form is built: logged with its trace once, whether the form then says so
    or, Slack failing views.update too, the ephemeral reply does (it was logged by both)."""
    incident = await bot.declare("P2 Search is slow")
    if not shown:
        bot.fake.fail("views.update", "internal_error", count=3)
    mark = len(bot.fake.responses)
    with caplog.at_level(logging.ERROR):
        outage.start()
        try:
            await bot.click(ActionId.UPDATE, str(incident.id), user="U0ALICE", channel=incident.channel_id)
        finally:
            outage.end()
    traced = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert len(traced) == 1, [r.getMessage() for r in traced]
    replies = [str(r) for r in bot.fake.responses[mark:]]
    if shown:
        assert replies == [] and "went wrong" in str(bot.fake.views[-1]["view"]["blocks"])
    else:
        assert len(replies) == 1 and "Something went wrong on our side" in replies[0]
