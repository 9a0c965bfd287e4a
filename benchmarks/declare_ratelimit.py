"""200 concurrent declares against a fake Slack that enforces the tier-2 limit on conversations.create.

    .venv/bin/python benchmarks/declare_ratelimit.py [--declares 200] [--per-window 20] [--window 6]

Slack allows about 20 conversations.create per minute (tier 2) and answers HTTP 429 with an
integer `Retry-After` beyond that. 200 channels therefore need at least
ceil(200/20) - 1 = 9 full windows after the first burst: 9 minutes at Slack's real 60 s window.
To keep the run short the window is scaled down (default 20 per 6 s, so the minimum is 54 s;
`--window 60` runs the real thing in ~9-10 min). The fake Slack's own limiter has a fixed 60 s
window (only `tier2_per_minute` is configurable), so this script subclasses it with a
configurable window; everything else is the fake as the tests use it.

Scaling keeps Retry-After in whole seconds, as Slack sends it, so each wait can overshoot by up to
1 s (+ slack_sdk's random jitter of up to 1 s): relative to a 6 s window that is a far bigger
share than relative to Slack's 60 s one. The printed ratio is therefore pessimistic.

The bot runs in this process (tests.harness.start_bot: the real app over HTTP, SQLite in a
temporary directory). Measured: how many declares ended with a channel, a pinned summary and an
announcement, and the time from the first request until the last incident was set up.
Target: all succeed, total <= 1.2 x the limit's minimum. Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from _common import LogTally, print_json, print_machine, seeded_fake
from sqlmodel import select

from bot.incidents.models import Incident
from bot.slack.adapters.incidents import Pacer
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import start_bot


class ScaledTier2Slack(FakeSlack):
    """The fake with a configurable tier-2 window (seconds) instead of the fixed 60 s."""

    window_seconds: float = 60.0

    def _rate_limited(self, method: str) -> int | None:
        if not (self.rate_limit_tier2 and method == "conversations.create"):
            return None
        now = self.clock()
        window = self._windows.setdefault(method, deque())
        while window and window[0] <= now - self.window_seconds:
            window.popleft()
        if len(window) >= self.tier2_per_minute:
            return max(1, math.ceil(window[0] + self.window_seconds - now))
        window.append(now)
        return None


async def main(declares: int, per_window: int, window: float) -> None:
    print_machine()
    tally = LogTally().install()
    fake = await seeded_fake(ScaledTier2Slack)
    assert isinstance(fake, ScaledTier2Slack)
    fake.rate_limit_tier2 = True
    fake.tier2_per_minute = per_window
    fake.window_seconds = window
    minimum = (math.ceil(declares / per_window) - 1) * window
    print(
        f"limit: {per_window} conversations.create per {window:g} s "
        f"({'Slack tier 2 as is' if window == 60 else f'Slack tier 2 scaled down {60 / window:g}x'}); "
        f"{declares} declares need at least {minimum:.0f} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-rl-") as tmp:
        settings = make_settings(fake=fake, database_url=f"sqlite:///{Path(tmp) / 'bot.db'}", tmp_path=Path(tmp))
        bot, stop = await start_bot(fake=fake, settings=settings)
        chat: Any = bot.deps.chat
        if hasattr(chat, "create_pacer"):
            # The bot paces conversations.create at Slack's 20/min; scale it like the fake's window.
            chat.create_pacer = Pacer(limit=per_window, window=window)
            print(f"bot pacing scaled to match: {per_window} per {window:g} s")
        try:
            started = time.perf_counter()
            acks = await asyncio.gather(
                *(bot.command(f"declare P3 Storm {n} checkout down", settle=False) for n in range(declares))
            )
            ack_done = time.perf_counter() - started
            await bot.settle(within=max(120.0, minimum * 3))
            total = time.perf_counter() - started
            async with bot.deps.db.session() as session:
                incidents = list((await session.exec(select(Incident))).all())
        finally:
            await stop()
            await fake.stop()
    ok = [i for i in incidents if i.channel_id and i.summary_ts and i.announcement_ts and not i.setup_error]
    failed = [i for i in incidents if i not in ok]
    creates = fake.calls_to("conversations.create")
    throttled = sum(1 for c in creates if c.status == 429)
    channels = sum(1 for c in fake.channels.values() if c.name.startswith("inc-"))
    print(f"acks: {sum(r.status_code == 200 for r in acks)}/{declares} HTTP 200, all answered within {ack_done:.2f} s")
    print(f"incidents stored: {len(incidents)}; fully set up: {len(ok)}; with a setup error: {len(failed)}")
    if failed:
        reasons: dict[str, int] = {}
        for incident in failed:
            reasons[incident.setup_error or "incomplete"] = reasons.get(incident.setup_error or "incomplete", 0) + 1
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4d} x {reason}")
    tally.report()
    print(f"conversations.create calls: {len(creates)} ({throttled} answered 429); channels created: {channels}")
    ratio = total / minimum if minimum else float("nan")
    print(
        f"total {total:.1f} s for {len(ok)} set-up incidents; minimum allowed by the limit {minimum:.0f} s; "
        f"ratio {ratio:.2f} "
        f"(target <= 1.2, all succeed: {'met' if ratio <= 1.2 and not failed else 'MISSED'})"
    )
    print_json(
        "declare_ratelimit",
        {
            "declares": declares,
            "per_window": per_window,
            "window_s": window,
            "set_up": len(ok),
            "failed": len(failed),
            "total_s": round(total, 2),
            "minimum_s": minimum,
            "ratio": round(ratio, 3),
            "creates": len(creates),
            "throttled": throttled,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declares", type=int, default=200)
    parser.add_argument("--per-window", type=int, default=20)
    parser.add_argument("--window", type=float, default=6.0, help="seconds; 60 is Slack's real tier-2 window")
    args = parser.parse_args()
    asyncio.run(main(args.declares, args.per_window, args.window))
