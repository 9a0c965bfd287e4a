"""Text people type is echoed back escaped: no `<!channel>` through a title, no hidden link, no fake mention.

Every message text and mrkdwn block the bot sent (Web API calls, response_url bodies and the
acks themselves) is scanned; plain_text fields are shown literally by Slack and are skipped.
"""

from __future__ import annotations

import re

import httpx
import pytest

from bot.incidents.models import Incident
from bot.slack.text import unescape
from tests.fault.support import Sent, bot_errors, sent_texts
from tests.harness import BotHarness

EVIL_USER = "U0EVIL"  # nobody the bot has any reason to mention
PAYLOAD = (
    f"<!channel> <!here> <!everyone> <!subteam^S0ONCALL|@oncall> <@{EVIL_USER}> "
    "<script>alert(1)</script> <https://evil.example/login|Grafana> &lt;already&gt; & co"
)
NON_ASCII = "Zahlungsdienst überlastet — 数据库超时 😱 \u202eRTL\u202c ǅ ﬁ"
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


def _leaks(sent: list[Sent]) -> list[str]:
    """Anything Slack would turn live: broadcasts, a mention of EVIL_USER, a link or tag from user text."""
    out: list[str] = []
    broadcast = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>|<!subteam\^")
    for item in sent:
        for pattern in (
            broadcast,
            re.compile(rf"<@{EVIL_USER}"),
            re.compile(r"<script"),
            re.compile(r"<https://evil"),
        ):
            out.extend(
                f"{item.where}: …{item.text[max(0, match.start() - 30) : match.end() + 10]}…"
                for match in pattern.finditer(item.text)
            )
    return out


def _assert_no_leaks(bot: BotHarness, acks: list[httpx.Response]) -> None:
    sent = sent_texts(bot.fake, acks=[r.text for r in acks])
    assert sent, "nothing was sent at all: the scan would prove nothing"
    leaks = _leaks(sent)
    assert not leaks, "\n".join(leaks)


def _channels_valid(bot: BotHarness) -> None:
    for channel in bot.fake.channels.values():
        if channel.name.startswith("inc-"):
            assert _CHANNEL_NAME.match(channel.name), channel.name


async def test_the_scan_catches_an_unescaped_broadcast(bot: BotHarness) -> None:
    """The detector itself: a raw `<!channel>` in a message is found, its escaped form is not."""
    assert bot.deps.slack_client is not None
    await bot.deps.slack_client.chat_postMessage(channel="C0GENERAL", text="raw <!channel> ping")
    await bot.deps.slack_client.chat_postMessage(channel="C0GENERAL", text="safe &lt;!channel&gt;")
    leaks = _leaks(sent_texts(bot.fake))
    assert len(leaks) == 1 and "raw" in leaks[0]


async def test_injection_through_every_free_text_field(bot: BotHarness) -> None:
    acks: list[httpx.Response] = []
    with bot_errors() as errors:
        acks.append(await bot.command(f"declare P1 {PAYLOAD}"))
        incident = await bot.incident(1)
        # Slack sends typed `<`, `>`, `&` encoded (`&lt;already&gt;` is "<already>" typed); its markup
        # (`<!channel>`) as is. Stored as typed, decoded once; escaping happens on output.
        assert incident.title == unescape(PAYLOAD), "the title is stored as typed"
        assert incident.channel_id, incident.setup_error
        where = incident.channel_id
        commands = (
            f"update identified {PAYLOAD}",
            f"note {PAYLOAD}",
            f"action {PAYLOAD.replace(f'<@{EVIL_USER}>', '')}",
            "sev P2",
            "role scribe <@U0BOB>",
            "timeline",
            "list",
            f"resolve {PAYLOAD}",
        )
        acks += [await bot.command(text, channel=where) for text in commands]
        acks.append(await bot.command(f"INC-1 note {NON_ASCII}"))
        acks.append(await bot.command("timeline", channel=where))
    assert not errors.records, errors.describe()
    assert (await bot.incident(1)).resolution == unescape(PAYLOAD)
    _assert_no_leaks(bot, acks)
    _channels_valid(bot)


async def test_channel_messages_echoed_by_timeline_are_escaped(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    await bot.event(
        {
            "type": "message",
            "channel": incident.channel_id,
            "user": "U0BOB",
            "text": PAYLOAD,
            "ts": "1.000001",
        }
    )
    ack = await bot.command("timeline", channel=incident.channel_id)
    assert any("&lt;!channel&gt;" in t for t in bot.replies()), "the message should be on the timeline, escaped"
    _assert_no_leaks(bot, [ack])


@pytest.mark.parametrize(
    "text",
    [
        "<!channel>",
        f"<@{EVIL_USER}> please",
        "update <!channel>",
        "update investigating " + "x" * 3001 + " <!here>",
        "sev <!here>",
        "role <!channel> <@U0BOB>",
        "role commander <!everyone>",
        "declare P1 service:<!channel> down",
        "playbook <!channel>",
        "stats <!here>",
        "ack <!channel>",
        "INC-99 note <!channel>",
        "note <!channel>",
    ],
)
async def test_usage_errors_do_not_echo_user_text_raw(bot: BotHarness, text: str) -> None:
    """A mistyped command is quoted back in the error: quoted, but escaped."""
    ack = await bot.command(text)
    assert ack.status_code == 200
    _assert_no_leaks(bot, [ack])


async def test_declare_form_with_injected_title_and_description(bot: BotHarness) -> None:
    values = {
        "title": {"value": {"type": "plain_text_input", "value": PAYLOAD}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P2"}}},
        "description": {"value": {"type": "plain_text_input", "value": f"{PAYLOAD}\n{NON_ASCII}"}},
    }
    ack = await bot.submit("incident_declare", values, private_metadata="C0GENERAL")
    incident = await bot.incident(1)
    assert incident.description.startswith(PAYLOAD) and incident.channel_id
    _assert_no_leaks(bot, [ack])
    _channels_valid(bot)


@pytest.mark.parametrize(
    ("title", "expected_prefix"),
    [
        (NON_ASCII, "inc-1-zahlungsdienst-uberlastet"),
        ("数据库超时 😱", "inc-1"),
        ("---", "inc-1"),
        ("a" * 300, "inc-1-" + "a" * 74),
        ("Ünïcödé " * 37, "inc-1-unicode-unicode"),
        ("<!channel> <@U0EVIL>", "inc-1-channel-u0evil"),
    ],
)
async def test_channel_names_stay_valid_for_any_title(bot: BotHarness, title: str, expected_prefix: str) -> None:
    await bot.command(f"declare P3 {title}")
    incident: Incident = await bot.incident(1)
    assert incident.channel_name and incident.channel_id, incident.setup_error
    assert _CHANNEL_NAME.match(incident.channel_name), incident.channel_name
    assert incident.channel_name.startswith(expected_prefix), incident.channel_name
    assert incident.title == title.strip()


async def test_very_long_text_is_refused_or_clipped_never_rejected_by_slack(bot: BotHarness) -> None:
    """At the limits (300-char title, 3000-char note) every message still passes Slack's block checks."""
    acks = [await bot.command("declare P1 " + "数" * 300)]
    incident = await bot.incident(1)
    assert incident.channel_id and incident.setup_error is None, incident.setup_error
    where = incident.channel_id
    commands = (
        "note " + "ü" * 3000,
        "update monitoring " + "😱" * 3000,
        "action " + "é" * 2000,
        "timeline",
        "list",
    )
    acks += [await bot.command(text, channel=where) for text in commands]
    acks.append(await bot.command("resolve " + "<!channel>" * 300, channel=where))
    errors = [c for c in bot.fake.calls if c.method.startswith("chat.") and not c.response.get("ok", True)]
    assert not errors, [(c.method, c.response) for c in errors]
    assert all(r.status_code == 200 for r in acks)
    _assert_no_leaks(bot, acks)


@pytest.mark.parametrize("text", ["note nul\x00byte", "declare P3 nul\x00in the title"])
async def test_nul_byte_in_text(bot: BotHarness, text: str) -> None:
    incident = await bot.declare("P2 Before")
    with bot_errors() as errors:
        ack = await bot.command(text, channel=incident.channel_id or "")
    assert ack.status_code == 200
    assert not errors.records, errors.describe()
    kinds = [e.kind for e in await bot.timeline(incident.id or 0)]
    if text.startswith("note"):
        assert "note" in kinds
    else:
        assert (await bot.incident(2)).channel_id


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/status", "<!channel>"),
        ("/status", f"<@{EVIL_USER}> api"),
        ("/restart", "<!here>"),
        ("/rollback", "<!channel> <https://evil.example/x|v41>"),
    ],
)
async def test_ops_commands_do_not_echo_user_text_raw(bot: BotHarness, command: str, text: str) -> None:
    ack = await bot.command(text, command=command)
    assert ack.status_code == 200
    _assert_no_leaks(bot, [ack])
