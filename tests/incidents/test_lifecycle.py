"""The whole /incident lifecycle through the real app: every subcommand, buttons and modals."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.incidents import grammar
from bot.incidents.models import Status
from bot.slack.listeners.commands.incident import HANDLERS
from tests.harness import BotHarness


async def _channel(bot: BotHarness, number: int) -> str:
    incident = await bot.incident(number)
    assert incident.channel_id
    return incident.channel_id


def _texts(bot: BotHarness, channel: str) -> list[str]:
    return [m.text or "" for m in bot.fake.messages(channel) if not m.ephemeral_to]


async def test_update_note_sev_role_ack_resolve_in_the_channel(bot: BotHarness) -> None:
    await bot.declare("P2 Search is slow")
    channel = await _channel(bot, 1)

    await bot.command("update identified bad index on orders", channel=channel, user="U0BOB")
    incident = await bot.incident(1)
    assert incident.status == Status.IDENTIFIED
    assert incident.last_status_update_at is not None
    assert any("identified" in t and "bad index on orders" in t for t in _texts(bot, channel))

    await bot.command("note tried restarting the replica", channel=channel, user="U0BOB")
    await bot.command("sev p1", channel=channel)
    await bot.command("role comms <@U0CAROL|carol>", channel=channel)
    await bot.command("ack", channel=channel, user="U0BOB")
    await bot.command("update monitoring index rebuilt", channel=channel)
    await bot.command("action add an alert on index bloat <@U0BOB>", channel=channel)
    await bot.command("resolve rebuilt the index", channel=channel)

    incident = await bot.incident(1)
    assert incident.severity == "P1"
    assert incident.comms == "U0CAROL"
    assert "U0CAROL" in bot.fake.channels[channel].members
    assert incident.acknowledged_by == "U0BOB"
    assert incident.mitigated_at is not None and incident.resolved_at is not None
    assert incident.mitigated_at <= incident.resolved_at
    assert incident.status == Status.RESOLVED
    assert incident.resolution == "rebuilt the index"

    events = await bot.timeline(1)
    kinds = [e.kind for e in events]
    for kind in ["declared", "status", "note", "severity", "role", "ack", "action_item", "resolved"]:
        assert kind in kinds, kind
    assert [e.at for e in events] == sorted(e.at for e in events)
    note = next(e for e in events if e.kind == "note")
    assert (note.actor, note.text) == ("U0BOB", "tried restarting the replica")

    # Topic, summary and announcement followed every change (chat.update, not new posts).
    assert "P1" in bot.fake.channels[channel].topic and "resolved" in bot.fake.channels[channel].topic
    summary = next(m for m in bot.fake.messages(channel) if m.ts == incident.summary_ts)
    assert "resolved" in str(summary.blocks)
    assert not any(b["type"] == "actions" for b in summary.blocks or [])
    announcement = next(m for m in bot.fake.messages("C0INCIDENTS") if m.ts == incident.announcement_ts)
    assert re.search(r"Resolved \d+s after declaration\. rebuilt the index", str(announcement.blocks))
    assert len([m for m in bot.fake.messages("C0INCIDENTS") if not m.ephemeral_to]) == 1


async def test_commands_elsewhere_name_the_incident(bot: BotHarness) -> None:
    await bot.declare("P3 Emails delayed")
    await bot.command("INC-1 note queue drained", channel="C0GENERAL")
    assert [e.text for e in await bot.timeline(1) if e.kind == "note"] == ["queue drained"]

    await bot.command("note no incident here", channel="C0GENERAL")
    assert "not an incident channel" in bot.last_reply()
    assert "/incident INC-7 note" in bot.last_reply()

    await bot.command("INC-99 ack")
    assert "There is no incident INC-99 that you can see" in bot.last_reply()


async def test_list_timeline_help(bot: BotHarness) -> None:
    await bot.declare("P1 API down")
    await bot.declare("P4 Typo on status page")
    await bot.command("INC-2 resolve")
    await bot.command("list")
    listing = bot.last_reply()
    assert "INC-1" in listing and "INC-2" not in listing

    await bot.command("INC-1 timeline")
    assert "declared" in bot.last_reply() and "INC-1 timeline" in bot.last_reply()

    await bot.command("help")
    assert "/incident declare" in bot.last_reply() and "/rollback" in bot.last_reply()
    await bot.command("")
    assert "/incident declare" in bot.last_reply()


def test_every_subcommand_the_grammar_parses_has_a_handler() -> None:
    assert set(grammar.USAGE) == set(HANDLERS)


async def test_a_domain_switched_off_answers_its_subcommand_itself(bot: BotHarness) -> None:
    bot.deps.escalator = None
    response = await bot.command("oncall")
    assert response.status_code == 200
    assert bot.last_reply() == "Escalation is not set up on this bot: nobody is on call here."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resolv", "/incident resolve"),
        ("decalre P1 db down", "/incident declare"),
        ("update done", "investigating, identified or monitoring"),
        ("update resolved", "/incident resolve"),
        ("sev P7", "P1 (critical) to P4"),
        ("role boss <@U0BOB>", "commander, comms, scribe"),
        ("role commander bob", "not a Slack user"),
        ("stats forever", "number of days"),
        ("note", "Add the note"),
        ("INC-1 declare again", "without an INC number"),
        ("declare P1", "Give the incident a title"),
    ],
)
async def test_bad_input_gets_usage_and_closest_form(bot: BotHarness, text: str, expected: str) -> None:
    response = await bot.command(text, channel="C0GENERAL")
    assert response.status_code == 200
    body = response.text
    if expected not in body:  # usage errors are in the ack; flow errors come by response_url
        body = bot.last_reply()
    assert expected in body
    async with bot.deps.db.session() as session:
        from bot.incidents.models import Incident

        assert await session.get(Incident, 1) is None


async def test_resolve_twice_is_refused_and_keeps_the_first(bot: BotHarness) -> None:
    await bot.declare("P2 Flaky deploys")
    channel = await _channel(bot, 1)
    await bot.command("resolve first", channel=channel, user="U0ALICE")
    await bot.command("resolve second", channel=channel, user="U0BOB")
    assert "resolved already" in bot.last_reply()
    incident = await bot.incident(1)
    assert (incident.resolved_by, incident.resolution) == ("U0ALICE", "first")
    assert [e.kind for e in await bot.timeline(1)].count("resolved") == 1
    await bot.command("update monitoring", channel=channel)
    assert "resolved already" in bot.last_reply()


async def test_buttons_ack_update_and_resolve(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Payments failing")
    channel = incident.channel_id
    assert channel
    await bot.click("incident_ack", "1", user="U0BOB", channel=channel, message_ts=incident.summary_ts)
    assert (await bot.incident(1)).acknowledged_by == "U0BOB"
    await bot.click("incident_ack", "1", user="U0CAROL", channel=channel, message_ts=incident.summary_ts)
    assert (await bot.incident(1)).acknowledged_by == "U0BOB"
    assert "acknowledged already" in bot.last_reply()

    await bot.click("incident_update_open", "1", user="U0BOB", channel=channel, message_ts=incident.summary_ts)
    view = bot.fake.views[-1]["view"]
    assert view["callback_id"] == "incident_update"
    await bot.submit(
        "incident_update",
        {
            "status": {"value": {"type": "static_select", "selected_option": {"value": "monitoring"}}},
            "message": {"value": {"type": "plain_text_input", "value": "failover done"}},
        },
        user="U0BOB",
        private_metadata=view["private_metadata"],
    )
    assert (await bot.incident(1)).status == Status.MONITORING

    await bot.click("incident_resolve_open", "1", user="U0BOB", channel=channel, message_ts=incident.summary_ts)
    view = bot.fake.views[-1]["view"]
    await bot.submit(
        "incident_resolve",
        {"summary": {"value": {"type": "plain_text_input", "value": "primary back"}}},
        user="U0BOB",
        private_metadata=view["private_metadata"],
    )
    resolved = await bot.incident(1)
    assert resolved.status == Status.RESOLVED and resolved.resolution == "primary back"


async def test_declare_by_modal(bot: BotHarness) -> None:
    response = await bot.command("declare")
    assert response.status_code == 200
    opened = bot.fake.views[-1]
    assert opened["view"]["callback_id"] == "incident_declare"

    values: dict[str, Any] = {
        "title": {"value": {"type": "plain_text_input", "value": ""}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P1"}}},
    }
    rejected = await bot.submit("incident_declare", values, private_metadata="C0GENERAL")
    assert rejected.json()["response_action"] == "errors"
    assert "title" in rejected.json()["errors"]

    values["title"] = {"value": {"type": "plain_text_input", "value": "Login broken"}}
    values["description"] = {"value": {"type": "plain_text_input", "value": "SSO returns 502"}}
    await bot.submit("incident_declare", values, private_metadata="C0GENERAL")
    incident = await bot.incident(1)
    assert (incident.title, incident.severity, incident.description) == ("Login broken", "P1", "SSO returns 502")
    assert bot.fake.channel_by_name("inc-1-login-broken") is not None
    told = [m for m in bot.fake.messages("C0GENERAL") if m.ephemeral_to == "U0ALICE"]
    assert told and "INC-1" in (told[-1].text or "")


async def test_channel_name_collision_gets_a_suffix(bot: BotHarness) -> None:
    bot.fake.add_channel("inc-1-db-down")
    await bot.declare("P1 DB down")
    incident = await bot.incident(1)
    assert incident.channel_name == "inc-1-db-down-2"


async def test_long_and_non_ascii_titles_make_valid_channel_names(bot: BotHarness) -> None:
    title = "Zürich café: ödeme sistemi çöktü — " + "x" * 200
    await bot.declare(f"P2 {title}")
    incident = await bot.incident(1)
    assert incident.channel_name is not None
    assert len(incident.channel_name) <= 80
    assert incident.channel_name.startswith("inc-1-zurich-cafe-odeme")
    assert incident.title == title


async def test_rate_limited_declare_is_retried_and_nothing_doubles(bot: BotHarness) -> None:
    bot.fake.throttle("conversations.create", count=1, retry_after=1)
    bot.fake.throttle("chat.postMessage", count=1, retry_after=1)
    await bot.declare("P1 Under load")
    incident = await bot.incident(1)
    assert incident.channel_id and incident.summary_ts and incident.announcement_ts
    assert incident.setup_error is None
    assert len([c for c in bot.fake.calls_to("conversations.create") if c.status == 200 and c.response.get("ok")]) == 1
    summaries = [m for m in bot.fake.messages(incident.channel_id) if "incident_actions" in str(m.blocks)]
    assert [m.ts for m in summaries] == [incident.summary_ts]
    assert len([m for m in bot.fake.messages("C0INCIDENTS") if not m.ephemeral_to]) == 1


async def test_channel_creation_failure_keeps_the_incident_and_offers_retry(bot: BotHarness) -> None:
    bot.fake.fail("conversations.create", "restricted_action", count=1)
    await bot.command("declare P1 Disk full on db-1")
    incident = await bot.incident(1)
    assert incident.channel_id is None
    assert incident.setup_error and "creating the channel" in incident.setup_error
    assert any(e.kind == "chat_error" for e in await bot.timeline(1))
    retry_reply = next(r for r in bot.fake.responses if "Retry setup" in str(r.get("blocks")))
    assert "is saved" in str(retry_reply)

    await bot.click("incident_retry_setup", "1")
    incident = await bot.incident(1)
    assert incident.channel_id and incident.summary_ts and incident.setup_error is None
    assert len(bot.fake.calls_to("pins.add")) == 1


async def test_user_text_is_escaped_everywhere(bot: BotHarness) -> None:
    await bot.declare("P1 <!channel> hi <@U0CTO> <https://evil.example|docs> & more")
    channel = await _channel(bot, 1)
    await bot.command("update identified <!here> ping", channel=channel)
    methods = {"chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.setTopic"}
    # plain_text objects (headers, buttons) are never parsed for mentions or links by Slack.
    sent = [str(_without_plain_text(c.args)) for c in bot.fake.calls if c.method in methods]
    sent += [str(_without_plain_text(r)) for r in bot.fake.responses]
    joined = "\n".join(sent)
    assert "<!channel>" not in joined and "<!here>" not in joined
    assert "<@U0CTO>" not in joined and "<https://evil.example" not in joined
    assert "&lt;!channel&gt;" in joined


def _without_plain_text(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return {}
        return {k: _without_plain_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_plain_text(v) for v in value]
    return value
