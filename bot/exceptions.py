"""Every error the bot raises on purpose.

Listeners catch `BotError` and turn it into a clear reply; anything else is a bug and is logged
with its stack trace. The tree:

    BotError
    ├── ConfigError              bad settings, bot.yml or playbook; start-up stops with one line
    ├── UsageError               a command that does not parse; carries usage and a suggestion
    ├── NotFound                 an incident, service, playbook or step that does not exist
    ├── PermissionDenied         the user may not run this (restart/rollback permissions)
    ├── InvalidState             the action does not fit the incident's state (resolve twice, ...)
    ├── ChatError                a Slack Web API call failed after retries; `step` says which
    │   ├── ChannelNameTaken     conversations.create answered name_taken
    │   ├── MessageGone          the message to edit or pin was deleted (message_not_found)
    │   └── InviteIncomplete     not everyone was added to a channel; says who was
    ├── HealthCheckError         a health endpoint could not be classified
    └── PlatformError            a deploy platform (Railway, Vercel, Kubernetes, webhook) failed
        ├── PlatformAuthError    token missing, wrong or lacking rights
        ├── PlatformRateLimited  HTTP 429; `retry_after` seconds
        │   └── PlatformThrottledNotSent  ... where a restart or rollback was certainly not sent: may be re-sent
        ├── PlatformNotStarted   a read a restart or rollback needs first got no clear answer: it was never sent
        └── PlatformUnsure       no clear answer (5xx, connection lost): what was asked may have happened
            └── PlatformTimeout  the platform or the deployment did not answer in time
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.clock import utc_text


class BotError(Exception):
    """Base of every deliberate error; `str(err)` is safe to show to a user.

    An error about people keeps them apart from its words: `people` are user or group IDs and the
    message marks where they go with `{people}`. `str(err)` shows the IDs plainly (logs, timeline);
    the chat layer escapes the words, which may hold what a user typed, and renders the people as
    mentions (`text.error_text`), so a refusal reads "only @lead may restart", never `&lt;@U0LEAD&gt;`.

    Times are kept apart the same way: `times` fill the `{time}` marks in order. `str(err)` says them
    in UTC; the chat layer shows them in each reader's own time zone.
    """

    PEOPLE = "{people}"
    TIME = "{time}"

    def __init__(
        self, message: str = "", *, people: tuple[str, ...] | list[str] = (), times: Sequence[datetime] = ()
    ) -> None:
        super().__init__(message)
        self.people = tuple(people)
        self.times = tuple(times)

    @property
    def template(self) -> str:
        return str(self.args[0]) if self.args else ""

    def render(
        self,
        *,
        words: Callable[[str], str],
        people: Callable[[tuple[str, ...]], str],
        time: Callable[[datetime], str],
    ) -> str:
        """The message with its words, people and times each shown as the caller shows them."""
        times = iter(self.times)
        out = []
        for piece in re.split(r"(\{people\}|\{time\})", self.template):
            when = next(times, None) if piece == self.TIME else None
            if piece == self.PEOPLE and self.people:
                out.append(people(self.people))
            elif when is not None:
                out.append(time(when))
            else:
                out.append(words(piece))
        return "".join(out)

    def __str__(self) -> str:
        return self.render(words=str, people=" or ".join, time=utc_text)


class ConfigError(BotError):
    """Configuration is invalid; the message names the file and field."""


class UsageError(BotError):
    """A command did not parse."""

    def __init__(
        self, message: str, *, usage: str = "", suggestion: str | None = None, times: Sequence[datetime] = ()
    ) -> None:
        super().__init__(message, times=times)
        self.usage = usage
        self.suggestion = suggestion


class NotFound(BotError):
    """Something the user named does not exist."""


class PermissionDenied(BotError):
    """The user is not allowed to do this."""


class InvalidState(BotError):
    """The request does not fit the current state of the incident."""


class ChatError(BotError):
    """A chat (Slack) call failed; `step` names what the bot was doing, `code` is Slack's error."""

    def __init__(self, message: str, *, step: str = "", code: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.code = code


# An ok answer to a share that names no file (against Slack's contract): Slack may have shared it, or not.
NO_FILE = "no_file"

# Slack answers that mean "try again later", not "this will never work". A failure without a
# Slack error code (an HTTP 5xx page from a gateway, a timeout) is transient too; the adapter
# reports HTTP statuses as `http_<status>`, those of a file's upload URL too (a 413 "too large"
# is not transient). NO_FILE is tried again by a caller that first looks for what Slack shared.
TRANSIENT_CODES = frozenset(
    {
        NO_FILE,
        "unreachable",
        "ratelimited",
        "rate_limited",
        "fatal_error",
        "internal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
    }
)


def is_transient(error: ChatError) -> bool:
    """Worth retrying: Slack was down, slow or throttling (not `user_not_found` and the like)."""
    code = error.code or ""
    return not code or code in TRANSIENT_CODES or code.startswith("http_5") or code == "http_429"


def unanswered(code: str | None) -> bool:
    """Slack's own answer never came back (the connection cut, a timeout, a gateway's 5xx page), or was
    `fatal_error`, which Slack documents as possibly after part of the work succeeded: Slack may have done
    what was asked. Any other answer of Slack's, even `ratelimited` or `internal_error`, says it did not.

    `code` is a failure's code as recorded: a Slack code (never with a space), `unreachable`, `http_<status>`,
    or, for a failure that had no code, its message; None when no outcome was recorded (the caller died).
    """
    return code is None or code in {"unreachable", "fatal_error"} or code.startswith("http_5") or " " in code


class ChannelNameTaken(ChatError):
    """The channel name exists already; the caller picks another."""


class MessageGone(ChatError):
    """Someone deleted the message: editing it again will never work, so the caller decides what replaces it."""


class InviteIncomplete(ChatError):
    """Invitations (one person per call) that did not all succeed: `added` are in the channel now (added,
    or members already), so the caller records only them; the message names whom Slack refused and why."""

    def __init__(self, message: str, *, step: str = "", code: str = "", added: tuple[str, ...] = ()) -> None:
        super().__init__(message, step=step, code=code)
        self.added = added


class HealthCheckError(BotError):
    """A health endpoint answered something that cannot be classified."""


class PlatformError(BotError):
    """A deploy platform call failed. `status`: the HTTP status it answered with (a refusal), when it did;
    `detail`: the platform's own words about it, for a client that explains the refusal itself."""

    def __init__(self, message: str, *, platform: str = "", status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.platform = platform
        self.status = status
        self.detail = detail


class PlatformAuthError(PlatformError):
    """The platform refused our credentials."""


class PlatformRateLimited(PlatformError):
    """The platform throttled us."""

    def __init__(self, message: str, *, platform: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, platform=platform)
        self.retry_after = retry_after


class PlatformThrottledNotSent(PlatformRateLimited):
    """A rate limit a restart or rollback met before it could have acted: a 429 on its own request (the platform
    refused it without doing anything) or on a read it makes before sending it.

    The only failure the bot sends a restart or rollback again on (`bot.ops.runner`). A client raises it only
    where it knows nothing was sent (`bot.platforms.reads.before_sending`, `action_request`); any other rate
    limit out of `restart()`/`rollback()` may come after the action was sent (a read of what it made) and is
    reported as an action that may have started, never sent again.
    """


class PlatformNotStarted(PlatformError):
    """A read a restart or rollback makes before it acts (what is live, what to go back to) got no clear
    answer (a server error, a connection lost, a timeout), so the restart or rollback itself was never sent.

    Kept apart from the PlatformUnsure it is raised from: the report must not say "it may have started" of an
    action that was not sent, or the on-call engineer checks dashboards for it and hesitates to run it again.
    `reason` is the read's short cause ("HTTP 503: ...").
    """

    def __init__(self, message: str, *, platform: str = "", reason: str = "") -> None:
        super().__init__(message, platform=platform)
        self.reason = reason or message


class PlatformUnsure(PlatformError):
    """No clear answer (a server error, a connection lost mid-request): what was asked may have happened.

    `reason` is the short cause without advice ("HTTP 502: Bad Gateway"), for a message that must not
    say "try again" about an action that may already be under way.
    """

    def __init__(self, message: str, *, platform: str = "", reason: str = "") -> None:
        super().__init__(message, platform=platform)
        self.reason = reason or message


class PlatformTimeout(PlatformUnsure):
    """The platform or the deployment did not finish in time."""
