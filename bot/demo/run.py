"""The demo's entry point (`python -m bot demo`): starts the stand-ins and the real bot, plays the story, cleans up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.demo.driver import Driver
from bot.demo.served import serve
from bot.demo.services import LocalServices
from bot.demo.slack_stand_in import SlackStandIn
from bot.demo.story import Story
from bot.demo.transcript import Transcript
from bot.demo.world import BOT_TOKEN, SECRET, demo_config
from bot.exceptions import ConfigError
from bot.settings import Settings
from bot.tasks import TaskTracker

if TYPE_CHECKING:
    from bot.deps import Deps


async def run_demo(
    settings: Settings,
    *,
    output: Path,
    pace: float = 0.8,
    stream: TextIO | None = None,
    escalation_after: tuple[int, int, int] = (0, 4, 8),
    keep: Path | None = None,
) -> int:
    """Play the incident; returns 0 when it ran to the end (the post-mortem is at `output`).

    `keep`: the demo's SQLite database is written there and kept (not deleted with the temporary
    folder), so `python -m bot postmortem INC-1` can be tried on it afterwards.
    """
    if keep is not None and await asyncio.to_thread(keep.exists):
        raise ConfigError(f"demo --keep: {keep} exists already: remove it or name another file")
    out = stream or sys.stdout
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.WARNING)  # the transcript is the output; the bot's own logs would drown it
    try:
        with tempfile.TemporaryDirectory(prefix="incident-bot-demo-") as tmp:
            return await _play(
                settings, Path(tmp), output=output, pace=pace, out=out, escalation_after=escalation_after, keep=keep
            )
    finally:
        root.setLevel(old_level)


async def _play(
    user_settings: Settings,
    tmp: Path,
    *,
    output: Path,
    pace: float,
    out: TextIO,
    escalation_after: tuple[int, int, int],
    keep: Path | None = None,
) -> int:
    """Start the stand-ins, then the bot against them; every server started is stopped again."""
    database = keep if keep is not None else tmp / "demo.db"
    slack = SlackStandIn()
    transcript = Transcript(out, slack.name)
    slack.transcript = transcript
    services = LocalServices()
    async with contextlib.AsyncExitStack() as stack:
        await slack.start()
        stack.push_async_callback(slack.stop)
        await services.start()
        stack.push_async_callback(services.stop)
        settings = Settings.load(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SECRET,
            slack_app_token=None,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{database}",
            bot_config=tmp / "bot.yml",
            playbooks_dir=_playbooks_dir(user_settings),
            alerts_token=None,
            railway_token=None,
            vercel_token=None,
            config=demo_config(services.base, escalation_after=escalation_after),
            _env_file=None,
        )
        out.write(_banner(database, services_url=services.base, kept=keep is not None, after=escalation_after))
        return await _run_bot(
            settings,
            slack=slack,
            services=services,
            transcript=transcript,
            pace=pace,
            output=output,
            out=out,
            keep=keep,
        )


async def _run_bot(
    settings: Settings,
    *,
    slack: SlackStandIn,
    services: LocalServices,
    transcript: Transcript,
    pace: float,
    output: Path,
    out: TextIO,
    keep: Path | None,
) -> int:
    """The real bot, wired and served as in production, while the story plays against it."""
    from bot import wiring
    from bot.server import build_web_app

    deps, app = wiring.build(settings)
    _quicken(deps)
    runner = None
    watch = TaskTracker()
    driver: Driver | None = None
    try:
        await wiring.start(deps)
        runner, bot_url = await serve(build_web_app(deps, app))
        watch.install()
        driver = Driver(bot_url=bot_url, slack=slack, transcript=transcript, watch=watch)
        story = Story(deps=deps, slack=slack, services=services, driver=driver, transcript=transcript, pace=pace)
        ok = await story.play()
        written = await story.write_postmortem(output)
        transcript.narrate(
            f"Done. The post-mortem draft is in {output}" if written else "Done, but no post-mortem could be written."
        )
        out.write(story.summary())
        if keep is not None:
            out.write(
                f"The demo's database is kept in {keep}: try\n"
                f"  DATABASE_URL=sqlite:///{keep} python -m bot postmortem INC-1 --format html -o inc-1.html\n"
            )
        return 0 if ok and written else 1
    finally:
        watch.uninstall()
        if driver is not None:
            await driver.close()
        if runner is not None:
            await runner.cleanup()
        await wiring.stop(deps)


def _banner(database: Path, *, services_url: str, kept: bool, after: tuple[int, int, int]) -> str:
    return (
        "incident-bot demo: one incident, start to finish, against a local Slack stand-in.\n"
        f"  database  {database} ({'kept' if kept else 'temporary'})\n"
        f"  services  gateway {services_url}/gateway/health (down), web {services_url}/web/health (up)\n"
        f"  people    alice (SRE), bob (on call), dana (team lead), chris (CTO)\n"
        f"  pages     level 1 at +{after[0]}s, level 2 at +{after[1]}s, "
        f"level 3 at +{after[2]}s (15 and 30 minutes in bot.example.yml)\n"
    )


def _playbooks_dir(settings: Settings) -> Path:
    """PLAYBOOKS_DIR when it exists, else the playbooks shipped next to the code (a source checkout)."""
    if Path(settings.playbooks_dir).is_dir():
        return Path(settings.playbooks_dir)
    shipped = Path(__file__).resolve().parents[2] / "playbooks"  # bot/demo/run.py -> the checkout's root
    return shipped if shipped.is_dir() else Path(settings.playbooks_dir)


def _quicken(deps: Deps) -> None:
    """Deploys in the demo finish in a second or two: poll them (and re-check health) more often."""
    ops = deps.ops  # bot.ops.runtime.OpsRuntime, when ops is wired
    if ops is not None:
        ops.poll_interval, ops.health_interval, ops.heartbeat = 0.3, 0.3, 2.0
