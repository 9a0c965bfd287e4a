"""A private incident's follow-ups in the tracker and in Slack: the item goes, the incident's secrets do not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.followups.conftest import Tracker
from tests.harness import BotHarness, running_bot

TITLE = "Leaked credentials in the payroll repo"


@pytest.fixture
async def tbot(fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker) -> AsyncIterator[BotHarness]:
    config = {"issue_tracker": dict(tracker.config)}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


def create_button(body: dict[str, Any]) -> str:
    for block in body.get("blocks") or []:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == "followup_create_issue":
            return str(accessory["value"])
    raise AssertionError(f"no Create issue button in {body}")


async def test_the_issue_of_a_private_follow_up_names_no_title_or_person(tbot: BotHarness, tracker: Tracker) -> None:
    incident = await tbot.declare(f"private P1 {TITLE}")
    channel = incident.channel_id or ""
    await tbot.command("action Rotate the vault root token <@U0BOB>", channel=channel)
    await tbot.command("resolve rotated", channel=channel)
    await tbot.command("postmortem done", channel=channel)  # files every open follow-up
    filed = json.dumps(tracker.fake.issues, default=str)
    assert "Rotate the vault root token" in filed and "a private incident" in filed  # the item itself goes
    assert "payroll" not in filed.lower() and "U0BOB" not in filed, filed
    assert "INC-1" not in filed, filed  # to anyone outside, INC-1 does not exist: its number stays in Slack


def issue_bodies(tracker: Tracker) -> list[list[str]]:
    """The body of each issue in the tracker's fake, as lines of text, whatever the tracker's format."""
    if tracker.kind == "github":
        texts = [str(issue["body"]) for issue in tracker.fake.issues.values()]
    elif tracker.kind == "jira":  # Atlassian Document Format: one paragraph per line
        texts = [
            "\n".join("".join(n.get("text", "") for n in p.get("content") or []) for p in doc["content"])
            for doc in (issue["fields"]["description"] for issue in tracker.fake.issues.values())
        ]
    else:
        texts = [str(issue["description"]) for issue in tracker.fake.issues.values()]
    # The bot's own reference (a random token, to find the issue after a lost answer) is not about the incident.
    own = ("<!-- incident-bot follow-up ", "Incident bot reference: ")
    kept = ["\n".join(line for line in text.splitlines() if not line.startswith(own)) for text in texts]
    return [text.strip().splitlines() for text in kept]


async def test_the_issue_of_a_private_follow_up_says_no_more_than_its_title_and_the_follow_up(
    tbot: BotHarness, tracker: Tracker
) -> None:
    incident = await tbot.declare(f"private P1 {TITLE}")
    channel = incident.channel_id or ""
    await tbot.command("action Rotate the vault root token", channel=channel)
    await tbot.command("resolve rotated", channel=channel)
    await tbot.command("postmortem done", channel=channel)
    assert issue_bodies(tracker) == [
        [
            "Follow-up from a private incident",
            "",
            "Rotate the vault root token",
            "",
            "Closing this issue marks the follow-up done in the incident bot.",
        ]
    ]
    filed = json.dumps(tracker.fake.issues, default=str)
    assert channel not in filed and "P1" not in filed and f"{incident.declared_at:%Y-%m-%d}" not in filed, filed


async def test_the_issue_of_a_follow_up_names_the_incident_and_owner(tbot: BotHarness, tracker: Tracker) -> None:
    incident = await tbot.declare("P2 Checkout returns 502")
    assert not incident.private
    channel = incident.channel_id or ""
    await tbot.command("action Add a retry budget <@U0BOB>", channel=channel)
    await tbot.command("resolve retried", channel=channel)
    await tbot.command("postmortem done", channel=channel)
    filed = json.dumps(tracker.fake.issues, default=str)
    assert "INC-1: Checkout returns 502" in filed and "U0BOB" in filed, filed


async def test_create_issue_clicked_outside_the_incident_channel_answers_only_the_clicker(tbot: BotHarness) -> None:
    assert (await tbot.declare(f"private P1 {TITLE}")).private
    # Alice may see INC-1; she adds a follow-up from #general (`/incident INC-1 …`) and files it from the reply.
    await tbot.command("INC-1 action Rotate the vault root token", channel="C0GENERAL")
    reply = tbot.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    mark = len(tbot.fake.responses)
    ephemeral = {"type": "message", "is_ephemeral": True, "channel_id": "C0GENERAL"}
    await tbot.click("followup_create_issue", create_button(reply), channel="C0GENERAL", container=ephemeral)
    answers = tbot.fake.responses[mark:]
    assert [a["response_type"] for a in answers] == ["ephemeral"], answers
    assert "created" in answers[0]["text"]
