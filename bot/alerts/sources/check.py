"""`python -m bot check` for `alerts.sources`: secrets present, and nobody left able to post unchecked."""

from __future__ import annotations

import os

from bot.alerts.sources.presets import NAMES
from bot.settings import Settings


def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    open_to_all: list[str] = []
    for name, source in sorted(settings.config.alerts.sources.items()):
        where = f"alerts.sources.{name}"
        if source.token_env and not os.environ.get(source.token_env, "").strip():
            errors.append(f"{where}.token_env: environment variable {source.token_env} is not set")
        if source.client_secret_env and not os.environ.get(source.client_secret_env, "").strip():
            errors.append(
                f"{where}.client_secret_env: environment variable {source.client_secret_env} (the Sentry "
                "integration's client secret) is not set"
            )
        has_token = bool(source.token_env) or settings.alerts_token is not None
        if not has_token and not source.client_secret_env:
            open_to_all.append(name)
        kind = NAMES[source.preset] if source.preset else "map"
        notes.append(f"alerts: POST /alerts/{name} ({kind})")
    if open_to_all:
        warnings.append(
            f"alerts.sources {', '.join(open_to_all)}: no token, so anyone who can reach them can post alerts: "
            "set ALERTS_TOKEN or each source's token_env (Sentry: client_secret_env)"
        )
    return errors, warnings, notes
