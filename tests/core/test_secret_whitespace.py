"""A secret pasted with a trailing newline (a Kubernetes secret made with `echo`, a `.env` line copied
with its end) is the secret without it: the bot's HMACs and token comparisons must not include it."""

from __future__ import annotations

from pathlib import Path

from tests.alerts import payloads as p
from tests.alerts.helpers import groups, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET, running_bot


async def test_a_signing_secret_with_a_trailing_newline_still_verifies_slack(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """`check` said ok, and every slash command was refused with 401 (Slack's signature is over the secret)."""
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, slack_signing_secret=SECRET + "\n"
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        response = await bot.command("help")
        assert response.status_code == 200
        assert any("/incident declare" in m.text for m in bot.fake.messages("C0GENERAL") if m.ephemeral_to)


async def test_an_alerts_token_with_surrounding_blanks_accepts_the_sender(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, alerts_token=" s3cret-alerts-token\n"
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        response = await send(
            bot, p.alertmanager([p.am_alert()]), headers={"Authorization": "Bearer s3cret-alerts-token"}
        )
        assert response.status_code < 300
        assert len(await groups(bot)) == 1
