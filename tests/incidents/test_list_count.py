"""`/incident list` counts its incidents in plain English."""

from __future__ import annotations

from tests.harness import BotHarness


async def test_the_list_says_one_open_incident_and_two_open_incidents(bot: BotHarness) -> None:
    """It said "1 open incidents"."""
    said = []
    for title in ("P2 Search is slow", "P3 Emails delayed"):
        await bot.declare(title)
        mark = len(bot.fake.responses)
        await bot.command("list", channel="C0GENERAL")
        said += [str(r.get("text") or "") for r in bot.fake.responses[mark:]]
    assert said == ["1 open incident", "2 open incidents"]
