"""Who the post-mortem lists as responders: the people of the response, not of the write-up after it."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.postmortem import sections
from tests.harness import BotHarness


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


def _responders(document: str) -> list[str]:
    table = document.split("| Responder | Roles |", 1)[1].split("\n\n", 1)[0]
    return [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines()[2:]]


async def test_people_who_only_worked_on_the_post_mortem_or_came_after_the_resolve_are_not_responders(
    bot: BotHarness, clock: FakeClock
) -> None:
    """The manager who regenerated the draft the next morning, the person who wrote its root cause and the
    one who said thanks in the channel after the resolve were each listed as a responder with their events."""
    incident = await bot.declare("P2 Search is slow")
    channel = incident.channel_id or ""
    assert incident.id is not None
    clock.advance(timedelta(minutes=4))
    await bot.command("note cache hit rate fell to 10%", channel=channel, user="U0BOB")
    clock.advance(timedelta(minutes=20))
    await bot.command("resolve cache warmed", channel=channel, user="U0BOB")
    clock.advance(timedelta(hours=16))
    thanks = bot.fake.user_says(channel, "U0DAN", "thanks all")
    await bot.event({**thanks, "ts": f"{clock.now().timestamp():.6f}"}, event_id="Ev700")
    async with bot.deps.db.session() as session:
        await sections.save(
            session,
            incident=await bot.incident(incident.id),
            section="root_cause",
            text="The cache was flushed by the deploy.",
            expected="",
            actor="U0ERIN",
            now=clock.now(),
            via="dashboard",
        )
    await bot.command("postmortem", channel=channel, user="U0CAROL")
    document = _document(bot)
    assert "The cache was flushed by the deploy." in document
    assert _responders(document) == ["@alice", "@bob"], document
    assert "| @bob | resolved | 2026-11-20 09:04:00 | 2 |" in document
