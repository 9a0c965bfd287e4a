"""A started FakeSlack with a few people, a real slack_sdk client on it, and small Block Kit builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user("U0ALICE", "alice", email="alice@example.com")
        server.add_user("U0BOB", "bob")
        server.add_user("U0GONE", "gone", deleted=True)
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.url)


async def api_error(coro: Any) -> str:
    """The Slack error code a call fails with."""
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response["error"]


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
