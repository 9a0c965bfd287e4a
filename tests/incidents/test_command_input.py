"""What a tired person types into `/incident`, through the real app: forms the README promises are read,
and the usage a mistake is answered with reaches Slack as text, not as Slack markup."""

from __future__ import annotations

from typing import Any

import pytest

from bot.incidents import service
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


@pytest.mark.parametrize("ref", ["INC-1", "inc1", "#1", "INC 1", "inc 1"])
async def test_an_incident_named_in_any_promised_form_gets_the_note(bot: BotHarness, ref: str) -> None:
    await bot.declare("P2 Search is slow")

    await bot.command(f"{ref} note cache flushed", channel="C0GENERAL")

    assert bot.last_reply() == "📝 Noted on the INC-1 timeline."
    assert [e.text for e in await bot.timeline(1) if e.kind == "note"] == ["cache flushed"]


@pytest.mark.parametrize("words", ["sev 1", "SEV 1", "Sev-1", "p 1", "sev1"])
async def test_sev_reads_the_spellings_declare_reads(bot: BotHarness, words: str) -> None:
    """README: `p1`, `sev1`, `SEV-1`, `sev 1` are all P1, and `/incident sev` refused `sev 1`."""
    await bot.declare("P3 Search is slow")

    await bot.command(f"INC-1 sev {words}", channel="C0GENERAL")

    assert (await bot.incident(1)).severity == "P1", bot.last_reply()


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("declre P1 checkout down", "Did you mean: `/incident declare P1 checkout down`"),
        ("INC-1 noet cache flushed", "Did you mean: `/incident INC-1 note cache flushed`"),
        ("reslove", "Did you mean: `/incident resolve`"),
        # The corrected words would not parse either: the subcommand's usage is the suggestion.
        ("rol boss", "Did you mean: `/incident role &lt;commander|comms|scribe&gt; &lt;@user&gt;`"),
    ],
)
async def test_a_misspelled_subcommand_is_answered_with_the_command_it_meant(
    bot: BotHarness, text: str, suggested: str
) -> None:
    await bot.command(text, channel="C0GENERAL")

    section = _usage_section(bot)
    assert suggested in section, section
    assert bot.fake.calls_to("conversations.create") == []


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("INC-1 ack now", "Did you mean: `/incident INC-1 ack`"),
        ("list all", "Did you mean: `/incident list`"),
        ("oncall now", "Did you mean: `/incident oncall`"),
    ],
)
async def test_words_after_a_command_that_takes_none_are_answered_with_the_command_alone(
    bot: BotHarness, text: str, suggested: str
) -> None:
    await bot.declare("P2 Search is slow")

    await bot.command(text, channel="C0GENERAL")

    section = _usage_section(bot)
    assert "takes no arguments" in section and suggested in section, section
    assert (await bot.incident(1)).acknowledged_by is None


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("INC-1 playbook servce-down", "Did you mean: `/incident INC-1 playbook service-down`"),
        ("INC-1 update investigatin db", "Did you mean: `/incident INC-1 update investigating db`"),
        ("INC-1 role comander <@U0BOB>", "Did you mean: `/incident INC-1 role commander &lt;@U0BOB&gt;`"),
    ],
)
async def test_a_suggestion_outside_the_incident_channel_keeps_the_incident_number(
    bot: BotHarness, text: str, suggested: str
) -> None:
    """Without INC-1 the suggested command, typed where the mistake was, is refused as not in an incident channel."""
    await bot.declare("P2 Search is slow")

    await bot.command(text, channel="C0GENERAL")

    section = _usage_section(bot)
    assert suggested in section, section


async def test_declared_in_the_announcements_channel_it_is_announced_there_once(bot: BotHarness) -> None:
    """The reply to the command and the announcement both went to #incidents: every declaration twice."""
    await bot.command("declare P2 Search is slow", channel="C0INCIDENTS")

    incident = await bot.incident(1)
    public = [m.text for m in bot.fake.messages("C0INCIDENTS") if m.ephemeral_to is None]
    assert len(public) == 1 and public[0].startswith("INC-1 [P2] Search is slow"), public
    reply = bot.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert f"INC-1 [P2] Search is slow declared: join <#{incident.channel_id}>" in reply["text"], reply


async def test_declared_elsewhere_the_reply_stays_in_the_channel(bot: BotHarness) -> None:
    await bot.command("declare P2 Search is slow", channel="C0GENERAL")

    assert bot.fake.responses[-1]["response_type"] == "in_channel"
    assert len([m for m in bot.fake.messages("C0INCIDENTS") if m.ephemeral_to is None]) == 1


@pytest.mark.parametrize(
    ("text", "suggested", "also"),
    [
        ("playbook db", "/incident INC-1 playbook database", ""),
        ("playbook latency", "/incident INC-1 playbook high-latency", ""),
        ("playbook Database issues", "/incident INC-1 playbook database", ""),
        ("playbook slow", "/incident INC-1 playbook high-latency", "`slow` matches high-latency, database."),
    ],
)
async def test_a_playbook_asked_for_by_a_word_that_is_not_its_id_is_suggested(
    bot: BotHarness, text: str, suggested: str, also: str
) -> None:
    """`db` is one of the database playbook's keywords, not a near spelling of its id: nothing was suggested."""
    await bot.declare("P2 Search is slow")

    await bot.command(f"INC-1 {text}", channel="C0GENERAL")

    section = _usage_section(bot)
    assert f"Did you mean: `{suggested}`" in section and also in section, section


async def test_a_declaration_naming_a_playbook_by_keyword_is_shown_its_id(bot: BotHarness) -> None:
    await bot.command("declare P1 playbook:postgres Checkout is down", channel="C0GENERAL")

    section = _usage_section(bot)
    assert "Unknown playbook `postgres`" in section and "playbook:database" in section, section


async def test_a_follow_up_that_is_only_its_owner_is_refused(bot: BotHarness) -> None:
    """`/incident action @bob` stored a follow-up whose task was the mention itself, shown as `&lt;@U0BOB&gt;`."""
    incident = await bot.declare("P2 Search is slow")

    await bot.command("action <@U0BOB|bob>", channel=incident.channel_id or "")

    section = _usage_section(bot)
    assert "Describe the follow-up item, then its owner" in section, section
    async with bot.deps.db.session() as session:
        assert await service.action_items(session, incident_id=1) == []
