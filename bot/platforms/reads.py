"""One rule for the read-only platform calls around a restart or rollback: a passing failure is asked once more.

Reading what is live and what one could roll back to changes nothing, so a server error (a 5xx, a
connection lost mid-answer) or a 429 with a short Retry-After is asked again after a short wait,
whatever the platform, instead of making the on-call engineer type the command again. A request that
timed out, or a Retry-After longer than READ_RETRY_WITHIN, is reported as before. The rule holds for the
reads of the command and of the click (`bot.ops`) and for those a platform makes inside its own restart
or rollback before it sends anything (`before_sending`). The restart or rollback itself is not a read and
has its own rule (`bot.ops.runner.RETRY_THROTTLED_WITHIN`): it is sent again only on a PlatformThrottledNotSent,
which a client raises where nothing can have been sent (a throttled read here, a 429 on the action's own request,
`action_request`). A read after the action was sent (what it made) must never let a plain rate limit out as
if nothing had happened: the bot reports that one as an action that may have started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.exceptions import (
    PlatformNotStarted,
    PlatformRateLimited,
    PlatformThrottledNotSent,
    PlatformTimeout,
    PlatformUnsure,
)
from bot.platforms.base import Deployment, Platform, rollback_snapshot
from bot.platforms.follow import Timer

log = logging.getLogger(__name__)

T = TypeVar("T")

# The longest Retry-After (seconds) a read waits out before asking again: the person is waiting for an answer.
READ_RETRY_WITHIN = 10.0
# The wait (seconds) before asking again after a server error, which names no time.
READ_RETRY_AFTER_ERROR = 1.0


async def read_once_more(read: Callable[[], Awaitable[T]], *, timer: Timer, what: str) -> T:
    """`read()`, asked a second time after a server error or a short throttle; its second failure is raised."""
    try:
        return await read()
    except PlatformTimeout:
        raise  # it has already waited a whole request timeout; a second would double the wait
    except PlatformRateLimited as exc:
        if exc.retry_after is None or exc.retry_after > READ_RETRY_WITHIN:
            raise
        wait = exc.retry_after
        log.info("%s: throttled, asking again in %g s", what, wait)
    except PlatformUnsure as exc:
        wait = READ_RETRY_AFTER_ERROR
        log.info("%s: %s; asking again in %g s", what, exc.reason, wait)
    await timer.sleep(wait)
    return await read()


async def before_sending(read: Callable[[], Awaitable[T]], *, action: str, platform: str, timer: Timer) -> T:
    """A read a restart or rollback makes before it sends anything, asked once more by the rule above; its
    unclear failure (a 5xx, a connection lost, a timeout) then becomes PlatformNotStarted, because nothing
    was sent and nothing can have started."""
    try:
        return await read_once_more(read, timer=timer, what=f"{platform}: reading before the {action}")
    except PlatformThrottledNotSent:
        raise
    except PlatformRateLimited as exc:
        raise not_sent(exc) from exc
    except PlatformUnsure as exc:
        raise PlatformNotStarted(
            f"{platform} did not answer what the bot reads before the {action} ({exc.reason}); "
            f"the {action} was not sent",
            platform=platform,
            reason=exc.reason,
        ) from exc


async def action_request(send: Callable[[], Awaitable[T]]) -> T:
    """The one request that restarts or rolls back: a 429 on it means the platform refused it without acting,
    so it becomes PlatformThrottledNotSent (which the bot may send again). Only for that request itself: a
    read after it is not covered."""
    try:
        return await send()
    except PlatformThrottledNotSent:
        raise
    except PlatformRateLimited as exc:
        raise not_sent(exc) from exc


def not_sent(exc: PlatformRateLimited) -> PlatformThrottledNotSent:
    """`exc` said as a rate limit on which nothing was sent."""
    return PlatformThrottledNotSent(str(exc), platform=exc.platform, retry_after=exc.retry_after)


async def snapshot_before_rollback(
    platform: Platform, target_id: str | None, *, history: int, timer: Timer
) -> tuple[list[Deployment], Deployment | None]:
    """`base.rollback_snapshot`, read as any read before a rollback is (`before_sending`)."""

    def snapshot() -> Awaitable[tuple[list[Deployment], Deployment | None]]:
        return rollback_snapshot(platform, target_id, history=history)

    return await before_sending(snapshot, action="rollback", platform=platform.display_name, timer=timer)
