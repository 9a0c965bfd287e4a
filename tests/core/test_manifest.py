"""The Slack app manifests validate against Slack's published schema and match what the bot handles."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "specs" / "slack-manifest" / "manifest.schema.1.0.0.json"


@pytest.mark.parametrize("name", ["manifest.yml", "manifest.http.yml"])
def test_manifest_validates_against_slack_schema(name: str) -> None:
    if not SCHEMA.exists():
        pytest.fail(f"manifest schema not found at {SCHEMA}")
    manifest = yaml.safe_load((ROOT / name).read_text())
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/incident", "/status", "/restart", "/rollback"}
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "reaction_added", "reaction_removed", "pin_added", "pin_removed"} <= events
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # Every Web API method the bot calls needs one of these.
    assert {
        "commands",
        "chat:write",
        "chat:write.public",
        "channels:manage",
        "pins:write",
        "files:write",
        "im:write",
    } <= scopes


@pytest.mark.parametrize("name", ["manifest.yml", "manifest.http.yml"])
def test_manifest_has_sign_in_with_slack_for_the_dashboard(name: str) -> None:
    manifest = yaml.safe_load((ROOT / name).read_text())
    assert set(manifest["oauth_config"]["scopes"]["user"]) == {"openid", "profile", "email"}
    assert [u.rsplit("/", 3)[-3:] for u in manifest["oauth_config"]["redirect_urls"]] == [["auth", "slack", "callback"]]


def test_socket_mode_manifest_and_http_variant() -> None:
    socket = yaml.safe_load((ROOT / "manifest.yml").read_text())
    http = yaml.safe_load((ROOT / "manifest.http.yml").read_text())
    assert socket["settings"]["socket_mode_enabled"] is True
    assert http["settings"]["socket_mode_enabled"] is False
    assert http["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert all(c["url"].endswith("/slack/events") for c in http["features"]["slash_commands"])


def test_procfile_runs_the_bot() -> None:
    assert (ROOT / "Procfile").read_text().strip() == "web: python -m bot"
