"""Text is shown as people typed it: Slack's encoding of `&`, `<` and `>` is undone once, not twice."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.postmortem import sections as pm_sections
from bot.postmortem import service
from tests.harness import BotHarness


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


async def test_entities_people_typed_reach_the_post_mortem_as_typed(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P2 Emails show raw entities")
    assert incident.id is not None and incident.channel_id
    channel = incident.channel_id
    # Typed `the encoder turns & into &amp;amp;`: Slack sends `&`, `<` and `>` of the text encoded.
    await bot.command("note the encoder turns &amp; into &amp;amp;amp;", channel=channel)
    clock.advance(timedelta(minutes=1))
    # A channel message that says `a &lt;br&gt; shows, not a line break`.
    await bot.event(
        {
            "type": "message",
            "channel": channel,
            "user": "U0BOB",
            "text": "a &amp;lt;br&amp;gt; shows, not a line break",
            "ts": f"{clock.now().timestamp():.6f}",
            "channel_type": "channel",
        }
    )
    async with bot.deps.db.session() as session:
        await pm_sections.save(
            session,
            incident=await bot.incident(incident.id),
            section="root_cause",
            text="templates escaped &lt; twice",
            expected="",
            actor="U0CAROL",
            now=clock.now(),
            via="dashboard",
        )
    clock.advance(timedelta(minutes=1))
    await bot.command("resolve fixed the &amp;amp; encoder", channel=channel)

    document = _document(bot)
    assert "Note: the encoder turns & into \\&amp;amp; |" in document
    assert "a \\&lt;br\\&gt; shows, not a line break |" in document
    assert "templates escaped \\&lt; twice" in document
    assert "fixed the \\&amp; encoder" in document

    async with bot.deps.db.session() as session:
        data = await service.build(session, incident_id=incident.id, now=clock.now())
    html = service.render(data, fmt="html")
    assert "the encoder turns &amp; into &amp;amp;amp;" in html
    assert "a &amp;lt;br&amp;gt; shows" in html
    assert "templates escaped &amp;lt; twice" in html
