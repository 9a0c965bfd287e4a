"""Wires the ops domain: one deploy client per service (from settings and bot.yml) and the runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.deps import Deps
from bot.ops import recovery
from bot.ops.flows import OpsRuntime
from bot.platforms.railway import TOKEN_KINDS
from bot.platforms.registry import SERVICE_ACCOUNT, build_platforms
from bot.settings import Settings


def setup(deps: Deps) -> None:
    platforms = build_platforms(deps.settings, deps.http, clock=deps.clock)
    deps.services["ops"] = OpsRuntime(platforms=platforms)
    deps.on_stop.append(platforms.aclose)
    recovery.setup(deps)


def check(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """For `python -m bot check`: what would make /restart or /rollback fail at 3 a.m."""
    env = os.environ if environ is None else environ
    config = settings.config
    errors: list[str] = []
    warnings: list[str] = []
    if settings.railway_token_kind.strip().lower() not in TOKEN_KINDS:
        errors.append(f"RAILWAY_TOKEN_KIND: must be auto, bearer or project (got {settings.railway_token_kind!r})")
    deployable = {name: s for name, s in config.services.items() if s.platform}
    for name, service in deployable.items():
        where = f"services.{name}"
        if service.platform == "railway" and settings.railway_token is None:
            warnings.append(f"{where}: RAILWAY_TOKEN is not set, so /restart and /rollback of {name} will fail")
        if service.platform == "vercel" and settings.vercel_token is None:
            warnings.append(f"{where}: VERCEL_TOKEN is not set, so /restart and /rollback of {name} will fail")
        if service.platform == "vercel" and service.vercel and not (service.vercel.team_id or settings.vercel_team_id):
            warnings.append(f"{where}: no vercel.team_id or VERCEL_TEAM_ID; fine for a personal account only")
        if service.platform == "kubernetes" and service.kubernetes is not None:
            token_env = service.kubernetes.token_env
            if token_env and not env.get(token_env, "").strip():
                warnings.append(f"{where}.kubernetes.token_env: environment variable {token_env} is not set")
            if not token_env and not (SERVICE_ACCOUNT / "token").exists():
                warnings.append(
                    f"{where}.kubernetes: no token_env and no service-account token at {SERVICE_ACCOUNT}/token"
                )
            ca_file = service.kubernetes.ca_file
            if ca_file is not None and not ca_file.exists():
                errors.append(f"{where}.kubernetes.ca_file: {ca_file} does not exist")
        if service.platform == "webhook" and service.webhook is not None:
            secret_env = service.webhook.secret_env
            if secret_env is None:
                warnings.append(f"{where}.webhook: no secret_env, so deploy requests are sent unsigned")
            elif not env.get(secret_env, "").strip():
                warnings.append(f"{where}.webhook.secret_env: environment variable {secret_env} is not set")
    if deployable and not config.permissions.restart:
        warnings.append("permissions.restart is empty: nobody may use /restart")
    if deployable and not config.permissions.rollback:
        warnings.append("permissions.rollback is empty: nobody may use /rollback")
    return errors, warnings
