"""bot.yml sections for alert sources, the issue tracker and channel archiving, and what `check` says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.alerts.sources import check as source_check
from bot.archive import setup as archive_setup
from bot.config import BotConfig, load_bot_config
from bot.exceptions import ConfigError
from bot.followups import setup as followup_setup
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack


def load(tmp_path: Path, text: str) -> BotConfig:
    path = tmp_path / "bot.yml"
    path.write_text(text)
    return load_bot_config(path, required=True)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("alerts: {sources: {up: {preset: nagios}}}", "alerts.sources.up.preset"),
        ("alerts: {sources: {up: {}}}", "give exactly one of preset"),
        ("alerts: {sources: {up: {preset: datadog, map: {group_key: a, status: b, title: c}}}}", "exactly one"),
        ("alerts: {sources: {grafana: {preset: datadog}}}", "is built in"),
        ("alerts: {sources: {Up Time: {preset: datadog}}}", "lowercase letters"),
        ("alerts: {sources: {c: {map: {group_key: 'a[', status: b, title: c}}}}", "invalid JMESPath expression"),
        ("alerts: {sources: {c: {map: {status: b, title: c}}}}", "alerts.sources.c.map.group_key"),
        ("alerts: {sources: {c: {preset: pingdom, client_secret_env: X}}}", "for preset: sentry only"),
        ("issue_tracker: {kind: github, token_env: T}", "kind github needs repo"),
        ("issue_tracker: {kind: github, token_env: T, repo: nope}", "write owner/name"),
        ("issue_tracker: {kind: jira, token_env: T, project: OPS}", "needs email_env, api_url"),
        ("issue_tracker: {kind: linear, token_env: T}", "needs team_id"),
        ("issue_tracker: {kind: gitlab, token_env: T}", "issue_tracker.kind"),
        (
            "issue_tracker: {kind: jira, token_env: T, project: OPS, email_env: E, api_url: acme.atlassian.net}",
            "write it with http:// or https://",
        ),
        ("issue_tracker: {kind: github, token_env: T, repo: a/b, api_url: ghe.acme.io/api/v3}", "not a full URL"),
        ("channels: {archive_after: 0s}", "longer than 0"),
        ("channels: {archive_after: soon}", "invalid duration"),
    ],
)
def test_bad_sections_stop_start_up_with_the_field(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, yaml_text)
    assert message in str(caught.value)


def test_good_sections_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
channels: {archive_after: 7d}
alerts:
  sources:
    uptime: {preset: uptimerobot, severity: P1, token_env: UPTIME_TOKEN}
    checks: {map: {group_key: check.id, status: "state == 'FAILING'", title: check.name}}
issue_tracker: {kind: jira, api_url: https://acme.atlassian.net, project: OPS, email_env: E, token_env: T}
""",
    )
    assert config.channels.archive_after is not None and config.channels.archive_after.days == 7
    assert config.alerts.sources["uptime"].preset == "uptimerobot"
    assert config.issue_tracker is not None and config.issue_tracker.kind == "jira"


async def test_check_reports_missing_secrets_and_open_sources(
    fake_slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPTIME_TOKEN", raising=False)
    monkeypatch.delenv("SENTRY_SECRET", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    config: dict[str, Any] = {
        "channels": {"archive_after": "12h"},
        "alerts": {
            "sources": {
                "uptime": {"preset": "uptimerobot", "token_env": "UPTIME_TOKEN"},
                "sentry": {"preset": "sentry", "client_secret_env": "SENTRY_SECRET"},
                "dd": {"preset": "datadog"},
            }
        },
        "issue_tracker": {"kind": "github", "repo": "acme/api", "token_env": "GH_TOKEN"},
    }
    settings = make_settings(fake=fake_slack, database_url="sqlite://", tmp_path=tmp_path, config=config)
    errors, warnings, notes = source_check.check(settings)
    assert any("UPTIME_TOKEN is not set" in e for e in errors)
    assert any("SENTRY_SECRET" in e and "client secret" in e for e in errors)
    assert warnings == [
        "alerts.sources dd: no token, so anyone who can reach them can post alerts: set ALERTS_TOKEN or each "
        "source's token_env (Sentry: client_secret_env)"
    ]
    assert "alerts: POST /alerts/uptime (UptimeRobot)" in notes
    errors, _, notes = followup_setup.check(settings)
    assert errors == ["issue_tracker.token_env: environment variable GH_TOKEN is not set"]
    assert notes == ["follow-ups: issues go to github (acme/api)"]
    _, warnings, _ = archive_setup.check(settings)
    assert "archived before an unfinished post-mortem is chased" in warnings[0]


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        # 0 re-arms the reminder at once: the channel is reminded several times a second.
        ("reminders: {status_update_every: 0s}", "reminders.status_update_every"),
        ("status_page: {remind_every: 0m}", "status_page.remind_every"),
        ("status_page: {probe_every: 0s}", "status_page.probe_every"),
        ("issue_tracker: {kind: github, token_env: T, repo: a/b, check_every: 0s}", "issue_tracker.check_every"),
        # 0 times every call out at once: /status calls a healthy service unreachable, every restart fails.
        ("services: {gw: {health_url: 'https://gw/health', timeout: 0s}}", "services.gw.timeout"),
        ("services: {gw: {health_url: 'https://gw/health', deploy_timeout: 0m}}", "services.gw.deploy_timeout"),
    ],
)
def test_a_zero_interval_or_timeout_stops_start_up_with_its_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, yaml_text)
    assert f"{key}: must be longer than 0" in str(caught.value)


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        # Passed check; at run time /status said the (healthy) gateway was unreachable.
        ("services: {gw: {health_url: gateway.example.com/health}}", "services.gw.health_url"),
        ("services: {gw: {health_url: 'ftp://gateway/health'}}", "services.gw.health_url"),
        (
            "services: {gw: {platform: webhook, webhook: {url: deploy.example.com/hook}}}",
            "services.gw.webhook.url",
        ),
    ],
)
def test_an_address_without_http_stops_start_up_with_its_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, yaml_text)
    assert f"{key}: " in str(caught.value) and "write it with http:// or https://" in str(caught.value)


def test_a_health_url_keeps_its_address(tmp_path: Path) -> None:
    config = load(tmp_path, "services: {gw: {health_url: ' https://gw.example.com:8443/health?deep=1 '}}")
    assert config.services["gw"].health_url == "https://gw.example.com:8443/health?deep=1"
