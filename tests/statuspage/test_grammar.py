"""`/incident publish [minor|major|critical] <message>` in the command grammar."""

from __future__ import annotations

import httpx
import pytest

from bot.exceptions import UsageError
from bot.incidents import grammar
from tests.harness import BotHarness


@pytest.mark.parametrize(
    ("text", "incident", "impact", "message"),
    [
        ("publish major We are investigating", None, "major", "We are investigating"),
        ("publish We are investigating", None, None, "We are investigating"),
        ("INC-7 publish Minor: Pages are slow", 7, "minor", "Pages are slow"),
        ("publish minority of users affected", None, None, "minority of users affected"),
        ("public critical Down", None, "critical", "Down"),
        ("publish Major We are investigating", None, "major", "We are investigating"),
        ("publish MAJOR we are investigating", None, "major", "we are investigating"),
        ("publish major delays at checkout", None, "major", "delays at checkout"),
        # The first word of a sentence, not the impact: the message is published as written.
        ("publish Major delays at checkout", None, None, "Major delays at checkout"),
        ("publish Critical systems are back", None, None, "Critical systems are back"),
        ("publish None of the payments were lost", None, None, "None of the payments were lost"),
        ("publish none of the payments were lost", None, None, "none of the payments were lost"),
        ("publish none: all payments went through", None, "none", "all payments went through"),
        ("publish none We are watching the payments", None, "none", "We are watching the payments"),
        # A colon (or comma) after the word makes it a label: the impact.
        ("publish Major: we are investigating", None, "major", "we are investigating"),
        ("publish Critical, payments fail", None, "critical", "payments fail"),
    ],
)
def test_publish_parses(text: str, incident: int | None, impact: str | None, message: str) -> None:
    cmd = grammar.parse(text)
    assert cmd == grammar.Publish(name="publish", incident=incident, impact=impact, message=message)
    assert "publish" in grammar.NEEDS_INCIDENT


@pytest.mark.parametrize("text", ["publish", "publish major", "publish Major", "publish " + "x" * 3001])
def test_publish_without_a_message_shows_the_usage(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        grammar.parse(text)
    assert raised.value.usage == "/incident publish [minor|major|critical|edit] <public message>"


def test_a_near_miss_suggests_publish() -> None:
    with pytest.raises(UsageError) as raised:
        grammar.parse("publsh we are on it")
    assert raised.value.suggestion == "/incident publish we are on it"  # the command as typed, spelled right
    with pytest.raises(UsageError) as raised:
        grammar.parse("publsh")  # nothing that parses: the usage
    assert raised.value.suggestion == grammar.USAGE["publish"]


async def test_without_a_status_page_publish_says_how_to_enable_it(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Checkout is down")
    await bot.command("publish major We are investigating.", channel=incident.channel_id or "")
    assert "The status page is not set up: add a `status_page:` section to bot.yml." in bot.last_reply()
    summary = next(m for m in bot.fake.messages(incident.channel_id or "") if m.ts == incident.summary_ts)
    actions = [e["action_id"] for b in summary.blocks or [] if b["type"] == "actions" for e in b["elements"]]
    assert "status_page_publish_open" not in actions and "incident_resolve_open" in actions
    async with httpx.AsyncClient(base_url=bot.url) as client:
        assert (await client.get("/status-page")).status_code == 404


@pytest.mark.parametrize(
    ("text", "edit", "message"),
    [
        ("publish edit We are investigating", True, "We are investigating"),
        ("publish --edit We are investigating", True, "We are investigating"),
        ("publish Edit: We are investigating", True, "We are investigating"),
        ("publish Edit requests fail for some users", False, "Edit requests fail for some users"),
        ("publish editing is slow", False, "editing is slow"),
    ],
)
def test_publish_edit_corrects_the_last_update(text: str, edit: bool, message: str) -> None:
    cmd = grammar.parse(text)
    assert isinstance(cmd, grammar.Publish)
    assert (cmd.edit, cmd.message, cmd.impact) == (edit, message, None)


def test_unpublish_and_withdraw_take_no_arguments() -> None:
    assert grammar.parse("INC-7 unpublish") == grammar.Command(name="unpublish", incident=7)
    assert grammar.parse("withdraw").name == "unpublish"
    with pytest.raises(UsageError):
        grammar.parse("unpublish now")
