"""The Bolt app factory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot import wiring
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack


def bolt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name.startswith("bot.slack.bolt") and r.levelno >= logging.WARNING
    ]


async def test_building_the_app_with_the_token_in_the_environment_logs_no_warning(
    fake_slack: FakeSlack,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bolt warns that SLACK_BOT_TOKEN goes unused next to our client, which that token built."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.bot_token)
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    caplog.set_level(logging.DEBUG)
    deps, app = wiring.build(settings)
    try:
        assert app.client.token == fake_slack.bot_token
        assert bolt_warnings(caplog) == []
        logging.getLogger("bot.slack.bolt").warning("something else")  # only that one notice is dropped
        assert bolt_warnings(caplog) == ["something else"]
    finally:
        await deps.http.aclose()
        await deps.db.dispose()


async def test_the_slack_libraries_log_at_the_bots_level_not_at_notset(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """slack_sdk and Bolt format a DEBUG line whenever their logger's own level is <= DEBUG, and NOTSET is 0.

    Left at NOTSET, the client formats every request and response (headers, body) for logging to
    drop: ~2 % of the event loop's time in a declaration storm. At DEBUG the lines must still come.
    """
    root, libraries = logging.getLogger(), [logging.getLogger("bot.slack.web"), logging.getLogger("bot.slack.bolt")]
    before = [logger.level for logger in (root, *libraries)]
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    try:
        for level in (logging.INFO, logging.DEBUG):
            root.setLevel(level)
            deps, app = wiring.build(settings)
            try:
                assert app.client.logger.level == level
                assert app.logger.level == level
            finally:
                await deps.http.aclose()
                await deps.db.dispose()
    finally:
        for logger, level in zip((root, *libraries), before, strict=True):
            logger.setLevel(level)
