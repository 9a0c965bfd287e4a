"""How long the dashboard takes to serve an incident page with 10,000 timeline events.

    .venv/bin/python benchmarks/dashboard_render.py [--events 10000] [--repeat 5]

Starts the real bot's HTTP server (against the fake Slack, on a temporary SQLite database), seeds one
incident with the same mix of events as `postmortem_render.py`, signs a session cookie with the
dashboard's own code, then times `GET /incidents/INC-1` (the whole timeline), and for comparison
`?key=1` and the post-mortem page, end to end over HTTP. The first request includes compiling the
templates. "CPU" is the process's CPU time per request (server and client share the process): on a
loaded machine wall time grows, CPU time much less. It prints figures and never asserts: the
target is under 1 s for the full page.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiohttp import web  # noqa: E402

from benchmarks._common import seeded_fake  # noqa: E402
from benchmarks.postmortem_render import seed  # noqa: E402
from bot.config import BotConfig  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.web.session import SESSION_COOKIE, Cookies  # noqa: E402
from tests.harness import SECRET, running_bot  # noqa: E402

SESSION_SECRET = "b" * 40


def _session_cookie(clock: object) -> str:
    """The cookie a signed-in person's browser would hold, minted with the dashboard's own signer."""
    response = web.Response()
    Cookies(secret=SESSION_SECRET, clock=clock, secure=False).start(  # type: ignore[arg-type]
        response, user_id="U0ALICE", name="alice", team_id="T0TEST"
    )
    return response.cookies[SESSION_COOKIE].value


async def main(events: int, repeat: int) -> None:
    logging.disable(logging.WARNING)
    fake = await seeded_fake()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            slack_bot_token=fake.bot_token,
            slack_signing_secret=SECRET,
            slack_api_url=fake.url,
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            bot_config=Path(tmp) / "bot.yml",
            config=BotConfig.model_validate({"channels": {"announcements": "C0INCIDENTS"}}),
            slack_oidc_client_id=fake.oidc.client_id,
            slack_oidc_client_secret=fake.oidc.client_secret,
            public_url="http://127.0.0.1",
            session_secret=SESSION_SECRET,
            _env_file=None,
        )
        async with running_bot(fake=fake, settings=settings) as bot:
            started = time.perf_counter()
            number = await seed(bot.deps.db, events)
            print(f"seeded INC-{number} with {events} timeline events in {time.perf_counter() - started:.2f} s")
            cookies = {SESSION_COOKIE: _session_cookie(bot.deps.clock)}
            async with httpx.AsyncClient(base_url=bot.url, cookies=cookies, timeout=60) as http:
                for label, path in (
                    ("incident page, full timeline", f"/incidents/INC-{number}"),
                    ("incident page, key events only", f"/incidents/INC-{number}?key=1"),
                    ("post-mortem page", f"/incidents/INC-{number}/postmortem"),
                ):
                    times: list[float] = []
                    cpu: list[float] = []
                    size = 0
                    for _ in range(repeat):
                        started, cpu_started = time.perf_counter(), time.process_time()
                        response = await http.get(path)
                        times.append(time.perf_counter() - started)
                        cpu.append(time.process_time() - cpu_started)
                        assert response.status_code == 200, response.text[:500]
                        size = len(response.content)
                    median = statistics.median(times[1:] or times)
                    cpu_median = statistics.median(cpu[1:] or cpu)
                    print(
                        f"{label}: first {times[0] * 1000:.0f} ms, median {median * 1000:.0f} ms, "
                        f"best {min(times) * 1000:.0f} ms; CPU median {cpu_median * 1000:.0f} ms "
                        f"({size / 1e6:.1f} MB of HTML)"
                    )
    await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.repeat))
