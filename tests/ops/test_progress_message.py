"""The /restart and /rollback progress message is edited in place; when a person deletes it, archives
the channel or removes the bot while the action runs, the next step is posted again (in the person's
DM when the channel is gone), so how the action ended is still seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.ops.models import Action, Outcome
from bot.ops.plans import Plan, Report, Step
from bot.platforms.base import Deployment, DeployStatus
from bot.slack.adapters.ops import SlackOpsProgress
from tests.fakes.slack_api import FakeSlack

PLAN = Plan(
    action=Action.RESTART,
    service="gateway",
    platform="railway",
    platform_name="Railway",
    current=Deployment("dep-1", DeployStatus.SUCCESS),
    requested_by="U0ALICE",
)
STEP = Step(phase="deploying", elapsed=timedelta(seconds=5))
HEALTHY = HealthResult("gateway", HealthState.HEALTHY)
REPORT = Report(PLAN, Outcome.SUCCEEDED, "gateway is back and healthy", health=HEALTHY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.add_user("U0ALICE", "alice")
        yield fake


def _progress(fake: FakeSlack, channel: str) -> SlackOpsProgress:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.url)
    return SlackOpsProgress(client, channel_id=channel, user_id="U0ALICE")


def _texts(fake: FakeSlack, channel: str) -> list[str]:
    return [m.text or "" for m in fake.messages(channel)]


async def test_a_deleted_progress_message_is_posted_again_with_the_outcome(fake: FakeSlack) -> None:
    channel = fake.add_channel("inc-1-gateway", members=["U0ALICE", fake.bot_user_id])
    progress = _progress(fake, channel)
    await progress.progress(plan=PLAN, step=STEP)
    [first] = fake.messages(channel)
    await progress.client.chat_delete(channel=channel, ts=first.ts)

    await progress.finished(plan=PLAN, report=REPORT)

    [again] = fake.messages(channel)
    assert again.ts != first.ts and "succeeded" in (again.text or ""), again.text


async def test_when_the_channel_is_archived_meanwhile_the_outcome_goes_to_the_person(fake: FakeSlack) -> None:
    channel = fake.add_channel("inc-2-gateway", members=["U0ALICE", fake.bot_user_id])
    progress = _progress(fake, channel)
    await progress.progress(plan=PLAN, step=STEP)
    await progress.client.conversations_archive(channel=channel)

    await progress.finished(plan=PLAN, report=REPORT)

    assert len(fake.messages(channel)) == 1 and "succeeded" not in _texts(fake, channel)[0]
    dm = progress.channel or ""
    assert dm != channel and any("succeeded" in t for t in _texts(fake, dm))
    await progress.progress(plan=PLAN, step=STEP)  # and later edits go to that message
    assert len(fake.messages(dm)) == 1
