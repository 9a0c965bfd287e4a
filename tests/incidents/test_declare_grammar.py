"""What `/incident declare` reads as options and what it leaves in the title, through the real app."""

from __future__ import annotations

import pytest

from bot.incidents.models import Incident
from tests.harness import BotHarness


async def _nothing_declared(bot: BotHarness) -> None:
    async with bot.deps.db.session() as session:
        assert await session.get(Incident, 1) is None


@pytest.mark.parametrize(
    ("text", "title", "severity"),
    [
        # A word that only looks like a severity inside or at the start of a title stays in it.
        ("Uploads to S3 failing", "Uploads to S3 failing", "P2"),
        ("S3 bucket exposed publicly", "S3 bucket exposed publicly", "P2"),
        ("High CPU on api", "High CPU on api", "P2"),
        ("Low disk space on db-1 replica", "Low disk space on db-1 replica", "P1"),  # the database playbook's P1
        ("Emails delayed after the P1 deploy", "Emails delayed after the P1 deploy", "P2"),
        # Forgiving spellings before the title.
        ("sev 2 payments slow", "payments slow", "P2"),
        ("p3: login slow", "login slow", "P3"),
        ("SEV-4 typo on the pricing page", "typo on the pricing page", "P4"),
        ("critical checkout down", "checkout down", "P1"),
        ("service:api sev1 Checkout returns 500", "Checkout returns 500", "P1"),
    ],
)
async def test_declare_keeps_the_title_whole(bot: BotHarness, text: str, title: str, severity: str) -> None:
    await bot.command(f"declare {text}")

    incident = await bot.incident(1)
    assert (incident.title, incident.severity) == (title, severity)
    assert f"INC-1 [{severity}] {title} declared by <@U0ALICE>" in bot.replies()[0]


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("declare P5 quarterly report typo", "P5"),
        ("declare P0 checkout down", "P0"),
        ("declare sev9 checkout down", "sev9"),
        ("declare sev 0 checkout down", "sev 0"),
        ("declare private P1 P2 checkout down", "P1 and P2"),
        ("P5 checkout down", "P5"),
    ],
)
async def test_a_severity_it_cannot_read_is_refused_with_the_usage(bot: BotHarness, text: str, got: str) -> None:
    response = await bot.command(text)

    assert response.status_code == 200
    reply = bot.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert f"Give one severity, P1 (critical) to P4 (low); got {got}." in reply["text"]
    assert "/incident declare [private] [P1..P4]" in reply["text"]
    await _nothing_declared(bot)


async def test_options_lead_in_any_order(bot: BotHarness) -> None:
    await bot.command("declare service:api P3 private Checkout is slow for private customers")

    incident = await bot.incident(1)
    assert (incident.title, incident.severity, incident.service, incident.private) == (
        "Checkout is slow for private customers",
        "P3",
        "api",
        True,
    )


async def test_a_word_that_is_not_a_subcommand_declares_nothing(bot: BotHarness) -> None:
    """`/incident P1 db down` declares; `/incident S3 down` or `/incident high cpu` is not a severity and
    not a subcommand."""
    for text in ["S3 uploads failing", "high CPU on api"]:
        await bot.command(text)
        assert "is not an /incident command" in bot.last_reply()
    await _nothing_declared(bot)


async def test_sev_takes_a_bare_number_and_its_words(bot: BotHarness) -> None:
    incident = await bot.declare("P3 Search is slow")
    assert incident.channel_id

    await bot.command("sev 2", channel=incident.channel_id)
    assert (await bot.incident(1)).severity == "P2"
    await bot.command("sev critical", channel=incident.channel_id)
    assert (await bot.incident(1)).severity == "P1"
    await bot.command("sev low", channel=incident.channel_id)
    assert (await bot.incident(1)).severity == "P4"
    await bot.command("sev 5", channel=incident.channel_id)
    assert "got 5" in bot.last_reply()
    assert (await bot.incident(1)).severity == "P4"


async def test_a_title_typed_with_ampersand_and_angle_brackets_is_stored_as_typed_and_shown_once_escaped(
    bot: BotHarness,
) -> None:
    """Slack sends typed `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`: stored encoded, every echo showed `&amp;`."""
    await bot.command("declare P2 Payments &amp; checkout p95 &gt; 2s")  # as Slack sends "Payments & checkout p95 > 2s"
    incident = await bot.incident(1)
    assert incident.title == "Payments & checkout p95 > 2s"
    topic = bot.fake.channels[incident.channel_id or ""].topic
    assert "Payments &amp; checkout p95 &gt; 2s" in topic and "&amp;amp;" not in topic, topic
    await bot.command("note cache &lt;eu-1&gt; flushed", channel=incident.channel_id or "")
    notes = [e.text for e in await bot.timeline(1) if e.kind == "note"]
    assert notes == ["cache <eu-1> flushed"]
