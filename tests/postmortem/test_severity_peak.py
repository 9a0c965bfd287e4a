"""A severity raised and lowered again during the incident: the post-mortem says how bad it got."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.postmortem import service
from tests.harness import BotHarness


async def test_the_worst_severity_is_reported_beside_the_current_one(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P3 Search is slow")
    assert incident.id is not None and incident.channel_id
    channel = incident.channel_id
    clock.advance(timedelta(minutes=5))
    await bot.command("severity P1", channel=channel)
    clock.advance(timedelta(minutes=20))
    await bot.command("severity P3", channel=channel)  # downgraded once mitigated
    clock.advance(timedelta(minutes=5))
    await bot.command("resolve caches warmed", channel=channel)

    [file] = [f for f in bot.fake.files.values() if f.completed]
    document = (file.content or b"").decode("utf-8")
    assert "a P3 (medium) incident (P1 at its worst)" in document
    assert "| Severity | P3 (medium), P1 at its worst |" in document
    [message] = [m for m in bot.fake.messages(channel) if file.id in m.files]
    assert "P3 (medium) (P1 at its worst)" in message.text

    async with bot.deps.db.session() as session:
        data = await service.build(session, incident_id=incident.id, now=clock.now())
    assert data.severity_peak == "P1" and data.severity_at_declaration == "P3"
    assert "<td>P3 (medium), P1 at its worst</td>" in service.render(data, fmt="html")


async def test_a_severity_only_lowered_is_said_once(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P2 Search is slow")
    assert incident.id is not None and incident.channel_id
    await bot.command("severity P3", channel=incident.channel_id)
    await bot.command("resolve fine", channel=incident.channel_id)
    [file] = [f for f in bot.fake.files.values() if f.completed]
    document = (file.content or b"").decode("utf-8")
    assert "| Severity | P3 (medium), declared as P2 |" in document
    assert "a P3 (medium) incident, was declared" in document
    [message] = [m for m in bot.fake.messages(incident.channel_id) if file.id in m.files]
    assert "P3 (medium) (P2 at its worst)" in message.text  # the comment does not say "declared as"
