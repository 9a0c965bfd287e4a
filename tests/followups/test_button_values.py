"""A follow-up button's value is a hint: one that only looks like digits is answered as a missing one."""

from __future__ import annotations

from bot.slack.blocks import ActionId
from tests.harness import BotHarness


async def test_a_superscript_follow_up_number_is_answered_as_no_follow_up(bot: BotHarness) -> None:
    """`"²".isdigit()` is true but `int("²")` fails: the click got "something went wrong"."""
    await bot.click(ActionId.CREATE_ISSUE, "x")
    expected = bot.last_reply()
    assert "carries no follow-up" in expected
    await bot.click(ActionId.CREATE_ISSUE, "²")
    assert bot.last_reply() == expected
