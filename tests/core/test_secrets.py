"""An empty secret stops start-up with a clear message: `ALERTS_TOKEN=` must not mean "no token needed"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.exceptions import ConfigError
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ["ALERTS_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "RAILWAY_TOKEN", "VERCEL_TOKEN"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [*SECRETS, "SLACK_APP_TOKEN", "BOT_CONFIG"]:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_stops_start_up(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    if name == "SLACK_BOT_TOKEN":  # its own check speaks first
        assert str(caught.value) == "SLACK_BOT_TOKEN: must be a bot token starting with xoxb-"
    else:
        assert str(caught.value) == f"{name} is set but empty: give it a value or remove it"


def test_several_are_named_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_TOKEN", "")
    monkeypatch.setenv("VERCEL_TOKEN", "")
    with pytest.raises(ConfigError, match="ALERTS_TOKEN, VERCEL_TOKEN are set but empty: give them values"):
        Settings.load()


def test_unset_or_set_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().alerts_token is None
    monkeypatch.setenv("ALERTS_TOKEN", "s3cret")
    token = Settings.load().alerts_token
    assert token is not None and token.get_secret_value() == "s3cret"
    monkeypatch.setenv("SLACK_APP_TOKEN", "")  # the one exception: empty means HTTP mode, as before
    assert not Settings.load().socket_mode


def test_python_dash_m_bot_says_so_and_exits(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "ALERTS_TOKEN": "", "SLACK_BOT_TOKEN": "xoxb-1"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "ALERTS_TOKEN is set but empty" in done.stderr
    assert "Traceback" not in done.stderr
