"""Domain ports implemented with the Slack Web API, built before the domains that use them."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DomainPorts:
    """Adapters only one domain uses: handed to that domain's setup, not kept on Deps."""

    pager: SlackPager
    public_chat: SlackPublicChat


def attach(deps: Deps, client: AsyncWebClient) -> DomainPorts:
    """Every Slack adapter, on Deps where several domains share it; the rest returned for `bot.wiring`."""
    chat = SlackIncidentChat(client, clock=deps.clock)
    chat.publish_button = deps.settings.config.status_page is not None
    deps.slack_client = client
    deps.chat = chat
    access = Access(membership=SlackMembership(client), permissions=deps.settings.config.permissions, clock=deps.clock)
    deps.access = access
    deps.alert_chat = SlackAlertChat(client)
    deps.playbook_chat = SlackPlaybookChat(client, dashboard=deps.settings.dashboard_url)
    deps.postmortem_chat = SlackPostmortemChat(client)
    deps.archive_chat = SlackArchiveChat(client)
    handles = UserHandles(client)
    deps.ops_directory = SlackDirectory(client, handles=handles)
    return DomainPorts(pager=SlackPager(client, handles=handles, access=access), public_chat=SlackPublicChat(client))
