"""An archive given up: said on the incident's timeline and to people, never only in the log.

The channel's last message said it was being archived. When Slack will not allow it (a workspace
setting, a required channel, a missing scope, a private channel the bot was removed from), or keeps
failing, the timeline records it (`events.UnfinishedWork`, signal "archive") and the channel hears
why and what to do by hand; a channel the bot cannot post to any more, its commander by DM (as the
reminders do).
"""

from __future__ import annotations

import logging

from bot.archive.models import ChannelArchive
from bot.archive.ports import ArchiveChat, NotArchived
from bot.config import is_user_id
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

SIGNAL = "archive"
# Slack answers channel_not_found for a private channel the bot is not in: it was removed (it cannot
# join a private channel again), or the channel was deleted. Nothing says which, so nothing is "done".
HIDDEN = "hidden"
BY_HAND = "Please archive it by hand: open the channel's name, then Settings, then Archive channel."
_WHY: dict[str, tuple[str, str]] = {
    "restricted_action": (
        "a workspace setting does not let the bot archive channels",
        "Please archive it by hand (someone the setting allows, such as a workspace admin): "
        "open the channel's name, then Settings, then Archive channel.",
    ),
    "cant_archive_general": ("it is the workspace's general channel, which Slack never archives", ""),
    "cant_archive_required": (
        "it is a required channel of this workspace",
        "A workspace admin can make it optional, then archive it by hand.",
    ),
    "not_in_channel": ("the bot is not in the channel and could not join it again", BY_HAND),
    "missing_scope": (
        "the bot's Slack app lacks a permission it needs to archive (or rejoin) the channel",
        f"{BY_HAND} To archive the next ones, an admin adds the app's missing scopes and reinstalls it.",
    ),
    "method_not_supported_for_channel_type": ("Slack does not let the bot archive or rejoin it", BY_HAND),
    HIDDEN: (
        "the bot cannot see this private channel any more (it was removed from it, or the channel was deleted)",
        "If the channel still exists, one of its members can archive it: open the channel's name, "
        "then Settings, then Archive channel.",
    ),
}


def why(code: str, *, attempts: int, by_slack: bool = True) -> tuple[str, str]:
    """(why it was not archived, what a person can do), in words; unknown codes are Slack failing, and
    a failure that is not Slack's (a database error, a bug) is named by its type."""
    if not by_slack:
        return f"the bot kept failing ({code}) after {attempts} attempts", BY_HAND
    if code in _WHY:
        return _WHY[code]
    return f"Slack kept failing ({code or 'no answer'}) after {attempts} attempts", BY_HAND


async def report(
    deps: Deps, chat: ArchiveChat, *, row: ChannelArchive, incident: Incident, code: str, by_slack: bool = True
) -> None:
    """Record the give-up on the timeline, then tell the channel (or its commander)."""
    reason, by_hand = why(code, attempts=row.attempts, by_slack=by_slack)
    text = f"The channel was not archived: {reason}." + (f" To do by hand: {by_hand}" if by_hand else "")
    payload = events.UnfinishedWork(
        signal=SIGNAL, failed=[f"archive the channel: {code or 'failed'}"], attempt=row.attempts
    )
    await timeline.record_now(deps, incident_id=row.incident_id, text=text, payload=payload)
    candidates = [incident.commander, incident.resolved_by, incident.declared_by, incident.acknowledged_by]
    person = next((who for who in candidates if is_user_id(who)), None)
    notice = NotArchived(
        ref=incident.ref,
        channel_id=row.channel_id,
        # A DM is outside the channel: a private channel's name, made from the title, stays in it.
        channel_name=None if incident.private else incident.channel_name,
        reason=reason,
        by_hand=by_hand,
        tell=[person] if person else [],
    )
    try:
        await chat.say_not_archived(notice=notice)
    except ChatError as exc:
        log.error("%s: could not tell anyone that its channel was not archived: %s", incident.ref, exc)
