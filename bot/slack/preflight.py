"""`python -m bot check`: every person and user group bot.yml names exists in the workspace.

A mistyped user ID in an escalation level or the rotation passed the check, and the page meant for
that person failed at 3 a.m. (`user_not_found`); an `@handle` nobody has paged no one.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotConfig, is_user_id
from bot.exceptions import ChatError
from bot.settings import Settings
from bot.slack.api import call, data, user_handles

log = logging.getLogger(__name__)

SLACK_TIMEOUT = 10


def references(config: BotConfig) -> list[tuple[str, str]]:
    """(bot.yml key, user ID / @handle / user group ID) for everyone the bot pages or lets act."""
    found: list[tuple[str, str]] = []
    for n, level in enumerate(config.escalation.levels):
        found += [(f"escalation.levels.{n}.notify", target) for target in level.notify if target != "oncall"]
    if config.oncall.rotation is not None:
        found += [("oncall.rotation.users", user) for user in config.oncall.rotation.users]
    found += [(f"oncall.overrides.{n}.user", o.user) for n, o in enumerate(config.oncall.overrides)]
    permissions = config.permissions
    for name in ("restart", "rollback", "private_incidents"):
        found += [(f"permissions.{name}", who) for who in getattr(permissions, name)]
    return found


async def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    refs = references(settings.config)
    if settings.slack_bot_token is None or not refs:
        return [], [], []
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=SLACK_TIMEOUT
    )
    people = _People(client)
    errors: list[str] = []
    warnings: list[str] = []
    for key, ref in refs:
        try:
            problem = await people.problem(ref)
        except ChatError as exc:
            warnings.append(f"{key}: could not look up {ref} ({exc.code or exc}): not checked")
            continue
        if problem:
            errors.append(f"{key}: {problem}")
    checked = len({ref for _, ref in refs})
    return errors, warnings, [f"slack: the {checked} people and user groups bot.yml names were looked up"]


class _People:
    """Looks each reference up once: users.info per ID, one users.list and one usergroups.list at most."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._handles: dict[str, str] | None = None
        self._groups: set[str] | None = None  # IDs and @handles
        self._seen: dict[str, str | None] = {}

    async def problem(self, ref: str) -> str | None:
        if ref not in self._seen:
            self._seen[ref] = await self._look_up(ref)
        return self._seen[ref]

    async def _look_up(self, ref: str) -> str | None:
        if ref.startswith("@"):
            if self._handles is None:
                self._handles = await user_handles(self.client)
            if ref[1:].lower() not in self._handles and ref.lower() not in await self._group_refs():
                return (
                    f"no one (and no user group) in the workspace has the handle {ref}: check the spelling, "
                    "or use the ID (U… or S…)"
                )
            return None
        if is_user_id(ref):
            return await self._user(ref)
        if ref not in await self._group_refs():
            return f"user group {ref} was not found (or is disabled): copy the ID from the group's profile (S…)"
        return None

    async def _group_refs(self) -> set[str]:
        if self._groups is None:
            body = data(await call("list user groups", self.client.usergroups_list()))
            groups = body.get("usergroups") or []
            self._groups = {str(g.get("id")) for g in groups} | {f"@{g.get('handle', '')}".lower() for g in groups}
        return self._groups

    async def _user(self, user_id: str) -> str | None:
        try:
            body = data(await call("look up a user", self.client.users_info(user=user_id), expected=_MISSING))
        except ChatError as exc:
            if exc.code in _MISSING:
                return (
                    f"user {user_id} was not found in this workspace: copy the member ID from the person's "
                    "profile (⋮ → Copy member ID)"
                )
            raise
        user: dict[str, Any] = body.get("user") or {}
        if user.get("deleted"):
            return f"user {user_id} ({user.get('name') or '?'}) is deactivated: replace them"
        return None


_MISSING = frozenset({"user_not_found", "users_not_found"})
