"""A Slack ``` code block people typed (a stack trace, a config snippet) reaches the post-mortem as code,
its indentation kept, not as escaped backticks on lines stripped of their leading spaces."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.postmortem import service, text
from tests.harness import BotHarness

TRACE = 'Traceback (most recent call last):\n  File "app.py", line 3\n    raise Timeout(<b>)\nTimeout'
RESOLUTION = f"Rolled back the pool change.\n```\n{TRACE}\n```\nThe `pool_size: 5` line was the trigger."


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


async def test_a_code_block_in_the_resolution_is_kept_as_code(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P2 Checkout times out")
    assert incident.id is not None and incident.channel_id
    clock.advance(timedelta(minutes=5))
    await bot.click("incident_resolve_open", str(incident.id), channel=incident.channel_id)
    view = bot.fake.views[-1]["view"]
    await bot.submit(
        "incident_resolve",
        {"summary": {"value": {"type": "plain_text_input", "value": RESOLUTION}}},
        private_metadata=view["private_metadata"],
    )
    assert (await bot.incident(incident.id)).resolution == RESOLUTION
    document = _document(bot)
    assert f"Rolled back the pool change.\n\n```\n{TRACE}\n```\n\nThe \\`pool_size: 5\\` line" in document, document
    async with bot.deps.db.session() as session:
        html = service.render(await service.build(session, incident_id=incident.id), fmt="html")
    code = TRACE.replace('"', "&#34;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<blockquote>Rolled back the pool change.\n<pre><code>{code}</code></pre>\nThe `pool_size" in html, html


def test_code_ends_at_the_first_fence_and_an_unclosed_fence_is_text() -> None:
    assert text.md_block("```a `` b``` after") == "```\na `` b\n```\n\nafter"
    assert text.md_block("see ``` here\n# not a heading") == "see \\`\\`\\` here\\\n\\# not a heading"
    assert text.md_block("before ``````") == "before"
    assert str(text.html_block("```</code></pre><script>```")) == (
        "<pre><code>&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;</code></pre>"
    )
