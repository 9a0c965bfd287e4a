"""Channel and user-group membership, and people's accounts, for the access check (`bot.incidents.access`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.exceptions import ChatError
from bot.incidents.access import Account
from bot.slack.api import call, data

if TYPE_CHECKING:
    from bot.incidents.access import Membership

_GONE = frozenset({"user_not_found"})


class SlackMembership:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def channel_members(self, *, channel_id: str) -> list[str]:
        members: list[str] = []
        cursor: str | None = None
        while True:
            response = await call(
                "read the channel's members",
                self.client.conversations_members(channel=channel_id, limit=1000, cursor=cursor or None),
            )
            body = data(response)
            members.extend(str(m) for m in body.get("members") or [])
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return members

    async def group_members(self, *, group_id: str) -> list[str]:
        response = await call("read the user group", self.client.usergroups_users_list(usergroup=group_id))
        return [str(u) for u in data(response).get("users") or []]

    async def account(self, *, person: str) -> Account:
        try:
            response = await call("look up a user", self.client.users_info(user=person), expected=_GONE)
        except ChatError as exc:
            if exc.code in _GONE:
                return Account(known=False)
            raise
        user = data(response).get("user") or {}
        # A single-channel guest is also `is_restricted`; both are read in case one is left out.
        guest = bool(user.get("is_restricted") or user.get("is_ultra_restricted"))
        offset = user.get("tz_offset")
        return Account(
            deactivated=bool(user.get("deleted")),
            guest=guest,
            tz=str(user.get("tz") or "") or None,
            tz_offset=offset if isinstance(offset, int) else None,
        )


def membership_reader(*, token: str, api_url: str) -> SlackMembership:
    """Membership for a process without the Slack app (the post-mortem CLI's access check)."""
    return SlackMembership(AsyncWebClient(token=token, base_url=api_url))


if TYPE_CHECKING:

    def _conforms(client: AsyncWebClient) -> Membership:
        return SlackMembership(client)
