"""What a tired person types into `/incident`, through the real app: forms the README promises are read,
and the usage a mistake is answered with reaches Slack as text, not as Slack markup."""

from __future__ import annotations

from typing import Any

from tests.harness import BotHarness


def _usage_section(bot: BotHarness) -> str:
    """The mrkdwn of the last usage reply's one section block."""
    reply: dict[str, Any] = bot.fake.responses[-1]
    assert reply["response_type"] == "ephemeral", reply
    return str(reply["blocks"][0]["text"]["text"])


async def test_a_usage_reply_shows_the_placeholders_escaped(bot: BotHarness) -> None:
    """`<@user>` unescaped is a mention of a user called "user", and `<commander|comms|scribe>` a link."""
    await bot.command("INC-1 role commander")

    section = _usage_section(bot)
    assert "Usage: `/incident role &lt;commander|comms|scribe&gt; &lt;@user&gt;`" in section, section
    assert "<@user>" not in section and "<commander" not in section


async def test_help_shows_the_placeholders_escaped(bot: BotHarness) -> None:
    await bot.command("help")

    reply = bot.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    text = reply["text"]
    assert "/incident declare [private] [P1..P4] [service:&lt;name&gt;] [playbook:&lt;id&gt;] &lt;title&gt;" in text
    assert "/rollback &lt;service&gt; [deployment-id]" in text
    assert "<" not in text.replace("&lt;", ""), text
