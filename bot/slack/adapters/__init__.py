"""Domain ports implemented with the Slack Web API, attached to deps when the app is built."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.slack.adapters.incidents import SlackIncidentChat


def attach(deps: Deps, client: AsyncWebClient) -> None:
    deps.chat = SlackIncidentChat(client, clock=deps.clock)
    deps.services["slack_client"] = client
    # Other domains: deps.services["<port name>"] = Slack<Port>(client, ...)
