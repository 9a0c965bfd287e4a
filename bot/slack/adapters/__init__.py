"""Domain ports implemented with the Slack Web API, attached to deps when the app is built."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.incidents.access import Access
from bot.slack.adapters.access import SlackMembership
from bot.slack.adapters.alerts import SlackAlertChat
from bot.slack.adapters.archive import SlackArchiveChat
from bot.slack.adapters.escalation import SlackPager
from bot.slack.adapters.incidents import SlackIncidentChat
from bot.slack.adapters.ops import SlackDirectory
from bot.slack.adapters.playbooks import SlackPlaybookChat
from bot.slack.adapters.postmortem import SlackPostmortemChat
from bot.slack.adapters.statuspage import SlackPublicChat
from bot.slack.api import UserHandles


def attach(deps: Deps, client: AsyncWebClient) -> None:
    chat = SlackIncidentChat(client, clock=deps.clock)
    chat.publish_button = deps.status_page is not None
    deps.chat = chat
    deps.access = Access(
        membership=SlackMembership(client), permissions=deps.settings.config.permissions, clock=deps.clock
    )
    deps.services["slack_client"] = client
    deps.services["alert_chat"] = SlackAlertChat(client)
    deps.services["playbook_chat"] = SlackPlaybookChat(client)
    deps.services["postmortem_chat"] = SlackPostmortemChat(client)
    deps.archive_chat = SlackArchiveChat(client)
    if deps.status_page is not None:
        deps.status_page.chat = SlackPublicChat(client)
    handles = UserHandles(client)
    deps.services["pager"] = SlackPager(client, handles=handles)
    deps.services["ops_directory"] = SlackDirectory(client, handles=handles)
    # Other domains: deps.services["<port name>"] = Slack<Port>(client, ...)
