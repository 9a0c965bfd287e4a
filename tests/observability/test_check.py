"""`python -m bot check`: every failure says what to do, checked against the fake Slack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.check import check_slack, required_scopes, run_check
from bot.settings import Settings
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def settings_for(fake: FakeSlack, tmp_path: Path, config: dict[str, Any] | None = None, **env: Any) -> Settings:
    return make_settings(
        fake=fake, database_url=f"sqlite:///{tmp_path / 'bot.db'}", tmp_path=tmp_path, config=config, **env
    )


@pytest.fixture
def bot_in_channels(fake_slack: FakeSlack) -> FakeSlack:
    for channel in ("C0INCIDENTS", "C0ALERTS"):
        fake_slack.channels[channel].members.add(fake_slack.bot_user_id)
    return fake_slack


async def test_all_good(bot_in_channels: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(bot_in_channels, tmp_path, alerts_token="an-alerts-token")
    assert await run_check(settings) == 0
    out = capsys.readouterr().out
    assert "slack: the token works for Fake Team as @incident-bot" in out
    assert f"all {len(required_scopes())} scopes" in out
    assert "channels.announcements #incidents (C0INCIDENTS) exists and the bot is a member" in out
    assert "playbooks: 4 in" in out
    assert out.strip().endswith("ok")


async def test_bot_not_in_the_channel(
    fake_slack: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.channels["C0ALERTS"].members.add(fake_slack.bot_user_id)
    assert await run_check(settings_for(fake_slack, tmp_path)) == 1
    out = capsys.readouterr().out
    assert (
        "error: channels.announcements: the bot is not a member of #incidents (C0INCIDENTS): "
        "invite the bot: /invite @incident-bot in #incidents"
    ) in out
    assert "channels.alerts" not in [line for line in out.splitlines() if line.startswith("error")][0]
    assert "1 error(s)" in out


async def test_channel_that_does_not_exist(bot_in_channels: FakeSlack, tmp_path: Path) -> None:
    settings = settings_for(
        bot_in_channels, tmp_path, {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0NOPE"}}
    )
    errors, _, _ = await check_slack(settings)
    assert errors == [
        "channels.alerts: channel C0NOPE was not found (or it is private and the bot is not in it): check the ID "
        "(channel name → View channel details → About → Channel ID), and for a private channel invite the bot: "
        "/invite @incident-bot in that channel"
    ]


async def test_channels_by_name_are_resolved(bot_in_channels: FakeSlack, tmp_path: Path) -> None:
    settings = settings_for(bot_in_channels, tmp_path, {"channels": {"announcements": "#incidents", "alerts": "#nope"}})
    errors, _, notes = await check_slack(settings)
    assert any("#incidents (C0INCIDENTS) exists" in n for n in notes)
    assert errors and errors[0].startswith("channels.alerts: no channel named #nope")


async def test_archived_channel(bot_in_channels: FakeSlack, tmp_path: Path) -> None:
    bot_in_channels.channels["C0ALERTS"].archived = True
    errors, _, _ = await check_slack(settings_for(bot_in_channels, tmp_path))
    assert errors == ["channels.alerts: #alerts (C0ALERTS) is archived: unarchive it or set another channel"]


async def test_missing_scopes(bot_in_channels: FakeSlack, tmp_path: Path) -> None:
    bot_in_channels.oauth_scopes = [s for s in required_scopes() if s not in {"pins:write", "im:write"}]
    errors, _, _ = await check_slack(settings_for(bot_in_channels, tmp_path))
    assert errors == [
        "the bot token lacks the scope(s) im:write, pins:write: add them under OAuth & Permissions → Bot Token "
        "Scopes (or update the app from manifest.yml), then reinstall the app to the workspace and use the new token"
    ]


async def test_no_scope_header_is_a_warning(bot_in_channels: FakeSlack, tmp_path: Path) -> None:
    bot_in_channels.oauth_scopes = None
    errors, warnings, _ = await check_slack(settings_for(bot_in_channels, tmp_path))
    assert errors == []
    assert warnings == ["Slack did not report the token's scopes (no x-oauth-scopes header): scopes not checked"]


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("invalid_auth", "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"),
        ("token_revoked", "reinstall the app to the workspace and use the new Bot User OAuth Token"),
        ("account_inactive", "the bot user is deactivated"),
        ("fatal_error", "Slack refused auth.test (fatal_error): check SLACK_BOT_TOKEN"),
    ],
)
async def test_a_refused_token_says_how_to_get_a_good_one(
    fake_slack: FakeSlack, tmp_path: Path, error: str, fix: str
) -> None:
    fake_slack.fail("auth.test", error)
    errors, _, _ = await check_slack(settings_for(fake_slack, tmp_path))
    assert len(errors) == 1 and fix in errors[0]


async def test_slack_unreachable(fake_slack: FakeSlack, tmp_path: Path) -> None:
    settings = settings_for(fake_slack, tmp_path, slack_api_url="http://127.0.0.1:9/api/")
    errors, _, _ = await check_slack(settings)
    assert len(errors) == 1
    assert errors[0].startswith("could not reach Slack at http://127.0.0.1:9/api/")
    assert "check the network, a proxy, or SLACK_API_URL" in errors[0]


async def test_without_a_token_the_preflight_is_skipped(
    fake_slack: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(fake_slack, tmp_path, slack_bot_token=None)
    assert await run_check(settings) == 0
    out = capsys.readouterr().out
    assert "slack: preflight skipped (no SLACK_BOT_TOKEN)" in out
    assert fake_slack.calls_to("auth.test") == []


async def test_playbook_errors_and_bad_auto_declare_playbooks_fail_the_check(
    bot_in_channels: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "broken.yml").write_text("id: broken\ntitle: Broken\nsteps: not-a-list\n")
    config = {"alerts": {"auto_declare": [{"match": {"severity": "critical"}, "playbook": "databse"}]}}
    settings = settings_for(bot_in_channels, tmp_path, config, playbooks_dir=playbooks)
    assert await run_check(settings) == 1
    out = capsys.readouterr().out
    assert "broken.yml" in out
    settings = settings_for(bot_in_channels, tmp_path, config)
    assert await run_check(settings) == 1
    out = capsys.readouterr().out
    assert "error: alerts.auto_declare.0.playbook: no playbook 'databse'" in out


async def test_warnings_for_an_unguarded_alert_endpoint(
    bot_in_channels: FakeSlack, tmp_path: Path, capsys: Any
) -> None:
    assert await run_check(settings_for(bot_in_channels, tmp_path)) == 0
    assert "warning: ALERTS_TOKEN is not set" in capsys.readouterr().out


def test_the_scopes_checked_are_the_manifests() -> None:
    import yaml

    from bot.check import MANIFEST_SCOPES

    manifest = yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"]
    assert required_scopes(MANIFEST) == manifest
    assert manifest == MANIFEST_SCOPES  # the built-in fallback (installed without the manifest) matches


PEOPLE: dict[str, Any] = {
    "oncall": {"rotation": {"users": ["U0BOB", "@carol", "@nobody"]}},
    "escalation": {
        "levels": [
            {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
            {"name": "Team lead", "after": "15m", "notify": ["U0LAED"]},  # a typo for U0LEAD
            {"name": "CTO", "after": "30m", "notify": ["U0GONE", "S0ONCALL"]},
        ]
    },
    "permissions": {"restart": ["S0NOPE", "@oncall-team"], "rollback": ["U0LEAD"]},
}


async def test_people_bot_yml_names_are_looked_up_in_the_workspace(
    bot_in_channels: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped user ID passed the check, and the page meant for the team lead failed at 3 a.m."""
    bot_in_channels.add_user("U0GONE", "gone", deleted=True)
    bot_in_channels.add_usergroup("S0ONCALL", "oncall-team", ["U0BOB"])
    assert await run_check(settings_for(bot_in_channels, tmp_path, config=PEOPLE)) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: escalation.levels.1.notify: user U0LAED was not found in this workspace: copy the member ID from "
        "the person's profile (⋮ → Copy member ID)",
        "error: escalation.levels.2.notify: user U0GONE (gone) is deactivated: replace them",
        "error: oncall.rotation.users: no one (and no user group) in the workspace has the handle @nobody: check "
        "the spelling, or use the ID (U… or S…)",
        "error: permissions.restart: user group S0NOPE was not found (or is disabled): copy the ID from the "
        "group's profile (S…)",
    ]


async def test_people_who_exist_pass(
    bot_in_channels: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot_in_channels.add_usergroup("S0ONCALL", "oncall-team", ["U0BOB"])
    config = {
        "oncall": {"rotation": {"users": ["U0BOB", "@carol"]}},
        "escalation": {"levels": [{"name": "L1", "after": "0m", "notify": ["oncall", "S0ONCALL", "U0LEAD"]}]},
        "permissions": {"restart": ["@oncall-team", "U0CTO"]},
    }
    assert await run_check(settings_for(bot_in_channels, tmp_path, config=config, alerts_token="t")) == 0
    assert "slack: the 6 people and user groups bot.yml names were looked up" in capsys.readouterr().out
