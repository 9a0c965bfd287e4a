"""The CLI post-mortem names people as Slack does when it has the bot token (users.info, once each)."""

from __future__ import annotations

import io

from bot.config import BotConfig
from bot.db import Database
from bot.postmortem.cli import run_cli
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlack
from tests.postmortem.seed import seed_full


async def test_with_the_token_people_are_shown_by_name(db: Database, database_url: str) -> None:
    await seed_full(db)
    async with FakeSlack() as fake:
        for user_id, name in {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol"}.items():
            fake.add_user(user_id, name, real_name=name.title())
        settings = Settings(  # type: ignore[call-arg]
            database_url=database_url,
            config=BotConfig(),
            slack_bot_token=fake.bot_token,
            slack_api_url=fake.url,
            _env_file=None,
        )
        out, err = io.StringIO(), io.StringIO()
        code = await run_cli(settings, incident="INC-7", fmt="markdown", output=None, stdout=out, stderr=err)
        lookups = [str(c.args.get("user")) for c in fake.calls_to("users.info")]
    document = out.getvalue()
    assert code == 0
    assert "@alice" in document and "@bob" in document and "@carol" in document
    assert "@U0ALICE" not in document and "@U0BOB" not in document
    assert sorted(lookups) == sorted(set(lookups))  # each person once
    # People not in this workspace (any more): kept as IDs, and said so.
    assert err.getvalue() == "note: Slack did not name U0DAVE, U0LEAD, U0GONE; shown by ID\n"
    assert "@U0DAVE" in document
