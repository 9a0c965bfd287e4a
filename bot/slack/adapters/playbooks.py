"""The playbook chat port, implemented with the Slack Web API."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.models import Incident
from bot.playbooks.schema import Playbook
from bot.playbooks.service import Progress
from bot.slack import playbook_blocks as pb
from bot.slack.api import call, data
from bot.slack.text import escape


class SlackPlaybookChat:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_progress(self, *, channel_id: str, progress: Progress) -> str:
        response = await call(
            "post the playbook",
            self.client.chat_postMessage(
                channel=channel_id,
                text=pb.progress_text(progress),
                blocks=pb.progress_blocks(progress),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return str(data(response)["ts"])

    async def update_progress(self, *, channel_id: str, ts: str, progress: Progress) -> None:
        await call(
            "update the playbook",
            self.client.chat_update(
                channel=channel_id, ts=ts, text=pb.progress_text(progress), blocks=pb.progress_blocks(progress)
            ),
        )

    async def post_picker(self, *, incident: Incident, playbooks: list[Playbook], note: str) -> str:
        assert incident.channel_id
        response = await call(
            "offer the playbooks",
            self.client.chat_postMessage(
                channel=incident.channel_id,
                text=f"Which playbook should {incident.ref} follow?",
                blocks=pb.picker_blocks(incident=incident, playbooks=playbooks, note=note),
            ),
        )
        return str(data(response)["ts"])

    async def notify(self, *, channel: str, text: str) -> str:
        await call(
            f"notify {channel}",
            self.client.chat_postMessage(channel=channel, text=escape(text), unfurl_links=False),
        )
        return channel  # plain text: it is stored on the timeline and shown escaped
