"""What a timeline event's text says on every surface that lists it: Slack, the dashboard, the post-mortem.

One rule in one place, so `/incident timeline`, the incident page and the post-mortem never disagree
on a line.
"""

from __future__ import annotations

from bot.timeline.models import Kind

# What a deleted message says: the timeline keeps that a message was deleted there, not its words.
DELETED = "(message deleted)"

# A message kept without its text: a 📌 carries none, and Slack's history could not be read for it
# (the next 📌 or pin of the message reads it again). Said, with the link each surface adds, not blank.
NO_TEXT = "(its text could not be read from Slack; see the message there)"


def text(kind: str, stored: str) -> str:
    """The text to show for an event: a channel message kept without its text says so instead of nothing."""
    if kind == Kind.MESSAGE and not stored:
        return NO_TEXT
    return stored


# A message kept without its author: a 📌 event may not name it (`item_user`), and Slack's history could
# not be read for it. Filled by the message's own event or the next 📌 or pin; never the person who marked it.
UNKNOWN_AUTHOR = "(author unknown)"


def author(kind: str, actor: str | None) -> str | None:
    """Who to show for an event: a channel message kept without its author says so instead of no one."""
    if kind == Kind.MESSAGE and not actor:
        return UNKNOWN_AUTHOR
    return actor
