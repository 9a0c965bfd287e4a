"""What the post-mortem says of an acknowledgement made for someone else's page, and of a mitigation that
did not hold, through the real app on a clock the tests move."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.postmortem import service
from tests.escalation.slack.conftest import button_values, page_dms
from tests.harness import BotHarness

PAGES: dict[str, Any] = {"escalation": {"levels": [{"name": "On-call", "after": "0m", "notify": ["U0LEAD"]}]}}


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


@pytest.mark.parametrize("bot_config", [PAGES])
async def test_an_ack_of_someone_else_s_page_says_whose_page_in_the_escalations(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Erin pressed Acknowledge on the page sent to the lead: the escalations table said only "first
    acknowledgement" by Erin, who was never paged, so it read as if nobody answered the page."""
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    assert bot.deps.escalator is not None
    await bot.deps.escalator.run_due()
    await bot.settle()
    (dm,) = page_dms(bot.fake, "U0LEAD")
    action, value = button_values(dm)[0]
    clock.advance(timedelta(minutes=3))
    await bot.click(action, value, user="U0ERIN", channel=None)
    assert (await bot.incident(incident.id or 0)).acknowledged_by == "U0ERIN"
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve rolled back", channel=channel, user="U0ERIN")
    document = _document(bot)
    row = next(line for line in document.splitlines() if "| ack |" in line)
    assert row.endswith("| @U0ERIN | first acknowledgement, of the page to @lead |"), row


async def test_a_mitigation_that_did_not_hold_says_so_beside_the_time_to_mitigate(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Monitoring at T+5m, the errors back at T+10m, monitoring again at T+20m: the draft gave 5m as the time
    to mitigate and nothing else, as if the impact had ended then."""
    incident = await bot.declare("P2 Search is slow")
    channel = incident.channel_id or ""
    for minutes, update in ((5, "monitoring cache flushed"), (5, "investigating errors are back")):
        clock.advance(timedelta(minutes=minutes))
        await bot.command(f"update {update}", channel=channel, user="U0BOB")
    await bot.command("postmortem", channel=channel)
    assert (
        "- Time to mitigate (first `monitoring` status): 5m 00s (it did not hold: back to investigating at T+10m 00s)\n"
    ) in _document(bot)
    clock.advance(timedelta(minutes=10))
    await bot.command("update monitoring index rebuilt", channel=channel, user="U0BOB")
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve index rebuilt", channel=channel, user="U0BOB")
    said = "5m 00s (it did not hold: back to investigating at T+10m 00s, `monitoring` again from T+20m 00s)"
    assert f"- Time to mitigate (first `monitoring` status): {said}\n" in _document(bot)
    *_, shared = [m for m in bot.fake.messages(channel) if m.files]
    assert "after declaration: not acknowledged, mitigated 5m 00s (did not hold), resolved 30m 00s\n" in shared.text
    async with bot.deps.db.session() as session:
        html = service.render(await service.build(session, incident_id=incident.id or 0), fmt="html")
    assert said in html


async def test_a_monitoring_status_stated_again_is_no_relapse(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P2 Search is slow")
    channel = incident.channel_id or ""
    for update in ("monitoring cache flushed", "monitoring still fine"):
        clock.advance(timedelta(minutes=5))
        await bot.command(f"update {update}", channel=channel, user="U0BOB")
    await bot.command("postmortem", channel=channel)
    assert "- Time to mitigate (first `monitoring` status): 5m 00s\n" in _document(bot)
