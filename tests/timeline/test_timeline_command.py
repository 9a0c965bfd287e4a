"""`/incident timeline` through the real app: what each line shows of the stored text."""

from __future__ import annotations

from bot.slack.text import escape
from tests.harness import BotHarness


async def test_a_long_message_is_cut_before_it_is_escaped_not_in_the_middle_of_an_entity(bot: BotHarness) -> None:
    """A long line was escaped and then cut to 500 characters: the cut fell inside `&amp;` and the
    timeline showed `&am…` where the person wrote `&`."""
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    typed = "x" * 495 + " & more after the cut"
    said = bot.fake.user_says(channel, "U0BOB", escape(typed))  # Slack sends `&` as `&amp;`
    await bot.event(said, event_id="Ev900")
    await bot.command("timeline", channel=channel)
    reply = bot.last_reply()
    assert escape(typed[:499]) + "…" in reply, reply
    assert "&am…" not in reply
