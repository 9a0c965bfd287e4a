"""`python -m bot check`: configuration, playbooks, and (when a token is set) a preflight against Slack.

Each problem is one line with its fix, so a newcomer can go down the list. Exit 1 on any error.
A check is `func(settings) -> (errors, warnings)` or `(errors, warnings, notes)`, sync or async;
notes are what was verified, printed so "ok" is not a leap of faith.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.slack import api

log = logging.getLogger(__name__)

# Module path -> function(settings). Other domains may append theirs.
CHECKS: list[str] = [
    "bot.check.check_config",
    "bot.migrations.check.check",
    "bot.playbooks.loader.check",
    "bot.check.check_alerts",
    "bot.alerts.sources.check.check",
    "bot.followups.setup.check",
    "bot.archive.setup.check",
    "bot.check.check_slack",
    "bot.slack.preflight.check",
    "bot.escalation.setup.check",
    "bot.ops.setup.check",
    "bot.postmortem.check.check",
    "bot.statuspage.setup.check",
]

# The bot token scopes manifest.yml asks for; used when the manifest is not next to the code (installed).
MANIFEST_SCOPES = [
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:manage",
    "channels:read",
    "channels:history",
    "channels:join",
    "groups:write",
    "groups:read",
    "groups:history",
    "im:write",
    "im:history",
    "pins:read",
    "pins:write",
    "reactions:read",
    "users:read",
    "usergroups:read",
    "files:write",
    "files:read",
]
SLACK_TIMEOUT = 10

CheckResult = tuple[list[str], list[str]] | tuple[list[str], list[str], list[str]]
Report = tuple[list[str], list[str], list[str]]  # errors, warnings, notes


def required_scopes(manifest: Path | None = None) -> list[str]:
    """The bot scopes in manifest.yml (the one next to the code, or in the working directory)."""
    import yaml

    candidates = (
        [manifest] if manifest else [Path("manifest.yml"), Path(__file__).resolve().parent.parent / "manifest.yml"]
    )
    for path in candidates:
        if path is None or not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            scopes = data["oauth_config"]["scopes"]["bot"]
            return [str(s) for s in scopes]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            log.warning("could not read the scopes from %s; using the built-in list", path)
    return list(MANIFEST_SCOPES)


# --- configuration ---------------------------------------------------------------------------------


def check_config(settings: Settings) -> Report:
    """bot.yml itself was validated when it was loaded; here, what only makes sense across settings."""
    config = settings.config
    errors: list[str] = []
    warnings: list[str] = list(config.warnings())
    notes = [
        f"config: {settings.bot_config} ({len(config.services)} services, "
        f"{len(config.escalation.levels)} escalation levels)"
    ]
    if not settings.bot_config.exists():
        warnings.append(
            f"BOT_CONFIG: no {settings.bot_config} in {Path.cwd()}: the defaults are used (no services, no "
            "channels): run from the directory that holds bot.yml, or set BOT_CONFIG to its path"
        )
    for name, service in sorted(config.services.items()):
        if service.health_url is None:
            warnings.append(f"services.{name}: no health_url, so /status cannot check it: add health_url")
    if settings.slack_bot_token is None:
        warnings.append("SLACK_BOT_TOKEN is not set: the bot cannot serve (and the Slack preflight is skipped)")
    elif not settings.socket_mode and settings.slack_signing_secret is None:
        errors.append(
            "SLACK_SIGNING_SECRET is not set and SLACK_APP_TOKEN is not set: HTTP mode needs the signing "
            "secret (Basic Information → App Credentials), or set SLACK_APP_TOKEN for Socket Mode"
        )
    return errors, warnings, notes


def _load_quietly(loader: Any, settings: Settings) -> Any:
    """The registry, without the loader's "loaded N playbooks" line in the middle of the report."""
    logger = logging.getLogger(loader.__name__)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return loader.load_playbooks(settings.playbooks_dir)
    finally:
        logger.setLevel(level)


def check_alerts(settings: Settings) -> Report:
    config = settings.config
    errors: list[str] = []
    warnings: list[str] = []
    rules = config.alerts.auto_declare
    if config.channels.alerts is None:
        warnings.append(
            "channels.alerts is not set: alerts are stored and auto_declare rules still run, but no alert "
            "message (with its Declare button) is posted: set channels.alerts to the #alerts channel ID"
        )
    if settings.alerts_token is None:
        warnings.append(
            "ALERTS_TOKEN is not set: anyone who can reach /alerts/* can post alerts; set it and configure "
            "Alertmanager's http_config.authorization.credentials (or Grafana's webhook Authorization) with it"
        )
    if any(rule.playbook for rule in rules):
        try:
            known = set(_load_quietly(importlib.import_module("bot.playbooks.loader"), settings).ids())
        except Exception:
            known = None  # the playbooks check reports why they do not load
        if known is not None:
            for index, rule in enumerate(rules):
                if rule.playbook and rule.playbook not in known:
                    choices = ", ".join(sorted(known)) or "none loaded"
                    errors.append(
                        f"alerts.auto_declare.{index}.playbook: no playbook {rule.playbook!r} "
                        f"(playbooks: {choices}): fix the id or remove it"
                    )
    notes = [f"alerts: {len(rules)} auto_declare rule(s)"] if rules else []
    return errors, warnings, notes


# --- Slack preflight -------------------------------------------------------------------------------

_TOKEN_FIXES = {
    "invalid_auth": "SLACK_BOT_TOKEN was refused (invalid_auth): copy the Bot User OAuth Token (xoxb-…) from "
    "OAuth & Permissions of the app installed in this workspace",
    "not_authed": "SLACK_BOT_TOKEN was not sent (not_authed): set it to the Bot User OAuth Token (xoxb-…)",
    "token_revoked": "SLACK_BOT_TOKEN was revoked (token_revoked): reinstall the app to the workspace and use "
    "the new Bot User OAuth Token",
    "token_expired": "SLACK_BOT_TOKEN expired (token_expired): turn off token rotation for the app or refresh "
    "the token, then set the new one",
    "account_inactive": "the bot user is deactivated (account_inactive): reinstall the app to the workspace",
    "team_access_not_granted": "the token has no access to this workspace (team_access_not_granted): install the "
    "app to the workspace",
}


def _slack_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        return str(response.get("error") or "")
    except Exception:
        return ""


async def check_slack(settings: Settings) -> Report:
    """auth.test, the token's scopes against manifest.yml, and the configured channels."""
    if settings.slack_bot_token is None:
        return [], [], ["slack: preflight skipped (no SLACK_BOT_TOKEN)"]
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=SLACK_TIMEOUT
    )
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        code = _slack_code(exc)
        return [_TOKEN_FIXES.get(code, f"Slack refused auth.test ({code or 'error'}): check SLACK_BOT_TOKEN")], [], []
    except Exception as exc:
        return (
            [
                f"could not reach Slack at {settings.slack_api_url} ({type(exc).__name__}: {exc}): check the network, "
                "a proxy, or SLACK_API_URL"
            ],
            [],
            [],
        )
    data = api.data(auth)
    bot_name = str(data.get("user") or "incident-bot")
    notes.append(f"slack: the token works for {data.get('team') or data.get('team_id')} as @{bot_name}")

    header = (auth.headers or {}).get("x-oauth-scopes") or (auth.headers or {}).get("X-OAuth-Scopes")
    if header is None:
        warnings.append("Slack did not report the token's scopes (no x-oauth-scopes header): scopes not checked")
    else:
        granted = {s.strip() for s in str(header).split(",") if s.strip()}
        needed = required_scopes()
        missing = [s for s in needed if s not in granted]
        if missing:
            errors.append(
                f"the bot token lacks the scope(s) {', '.join(missing)}: add them under OAuth & Permissions → "
                "Bot Token Scopes (or update the app from manifest.yml), then reinstall the app to the workspace "
                "and use the new token"
            )
        else:
            notes.append(f"slack: all {len(needed)} scopes manifest.yml needs are granted")

    channels = settings.config.channels
    for field, ref in (("announcements", channels.announcements), ("alerts", channels.alerts)):
        if ref is None:
            continue
        problem, note = await _check_channel(client, field=field, ref=ref, bot_name=bot_name)
        if problem:
            errors.append(problem)
        if note:
            notes.append(note)
    return errors, warnings, notes


async def _check_channel(client: Any, *, field: str, ref: str, bot_name: str) -> tuple[str | None, str | None]:
    from slack_sdk.errors import SlackApiError

    where = f"channels.{field}"
    invite = f"/invite @{bot_name}"
    try:
        if ref.startswith("#"):
            channel = await _channel_by_name(client, ref[1:])
            if channel is None:
                return (
                    f"{where}: no channel named {ref} that the bot can see: check the name, or (private channel) "
                    f"invite the bot: {invite} in {ref}; better, use the channel ID (channel details → About)",
                    None,
                )
        else:
            channel = (await client.conversations_info(channel=ref)).data["channel"]
    except SlackApiError as exc:
        code = _slack_code(exc)
        if code == "channel_not_found":
            return (
                f"{where}: channel {ref} was not found (or it is private and the bot is not in it): check the ID "
                f"(channel name → View channel details → About → Channel ID), and for a private channel invite the "
                f"bot: {invite} in that channel",
                None,
            )
        if code == "missing_scope":
            return (
                f"{where}: the token may not read channel {ref} (missing_scope): add channels:read and groups:read",
                None,
            )
        return f"{where}: Slack answered {code or 'an error'} for channel {ref}", None
    except Exception as exc:
        return f"{where}: could not look up channel {ref} ({type(exc).__name__})", None
    name = f"#{channel.get('name') or ref.lstrip('#')}"
    label = f"{name} ({channel.get('id') or ref})"
    if channel.get("is_archived"):
        return f"{where}: {label} is archived: unarchive it or set another channel", None
    if not channel.get("is_member"):
        return f"{where}: the bot is not a member of {label}: invite the bot: {invite} in {name}", None
    return None, f"slack: {where} {label} exists and the bot is a member"


async def _channel_by_name(client: Any, name: str) -> dict[str, Any] | None:
    cursor = None
    for _ in range(50):  # 50 pages of 200: enough for any workspace we expect
        response = await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=False, limit=200, cursor=cursor
        )
        for channel in response.data.get("channels", []):
            if channel.get("name") == name:
                return dict(channel)
        cursor = (response.data.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


# --- runner ----------------------------------------------------------------------------------------


async def _run_one(path: str, settings: Settings) -> tuple[list[str], list[str], list[str]]:
    module_name, _, func_name = path.rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(settings)
        if isinstance(result, Awaitable):
            result = await result
    except Exception as exc:
        log.debug("check %s crashed", path, exc_info=True)
        return [f"{path}: the check itself failed ({type(exc).__name__}: {exc})"], [], []
    errors, warnings = list(result[0]), list(result[1])
    notes = list(result[2]) if len(result) > 2 else []
    return errors, warnings, notes


async def run_check(settings: Settings) -> int:
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    for path in CHECKS:
        more_errors, more_warnings, more_notes = await _run_one(path, settings)
        errors += more_errors
        warnings += [w for w in more_warnings if w not in warnings]
        notes += more_notes
    for note in notes:
        print(note)
    for warning in warnings:
        print(f"warning: {warning}")
    for error in errors:
        print(f"error: {error}")
    if errors:
        print(f"{len(errors)} error(s): fix them before starting the bot.")
        return 1
    if (banner := _nothing_here(settings)) is not None:
        print(banner)
        print("ok (but there is nothing here to check)")
        return 0
    print("ok")
    return 0


def _nothing_here(settings: Settings) -> str | None:
    """Run from the wrong directory, check saw no bot.yml and no playbooks and used to say just "ok"."""
    playbooks = Path(settings.playbooks_dir)
    has_playbooks = playbooks.is_dir() and any(playbooks.glob("*.y*ml"))
    if settings.config.services or has_playbooks:
        return None
    rule = "!" * 78
    return (
        f"{rule}\n"
        f"WARNING: 0 services and 0 playbooks: {Path.cwd()} looks like the wrong directory.\n"
        f"  bot.yml read: {settings.bot_config.resolve()}"
        f"{'' if settings.bot_config.exists() else ' (not found: the defaults were used)'}\n"
        f"  playbooks read: {playbooks.resolve()}{'' if playbooks.is_dir() else ' (not found)'}\n"
        "  Run `python -m bot check` where bot.yml and playbooks/ are, or set BOT_CONFIG and PLAYBOOKS_DIR.\n"
        f"{rule}"
    )
