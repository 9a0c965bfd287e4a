"""Wires the ops domain: one deploy client per service (from settings and bot.yml) and the runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.config import KubernetesTarget, Service, WebhookTarget
from bot.deps import Deps
from bot.ops import recovery
from bot.ops.runtime import OpsRuntime, RuntimeTimer
from bot.platforms.railway import TOKEN_KINDS
from bot.platforms.registry import SERVICE_ACCOUNT, build_platforms
from bot.settings import Settings


def setup(deps: Deps) -> None:
    timer = RuntimeTimer()
    platforms = build_platforms(deps.settings, deps.http, clock=deps.clock, timer=timer)
    deps.ops = timer.runtime = OpsRuntime(platforms=platforms)
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
        found = _check_service(settings, env, name, service)
        errors += found[0]
        warnings += found[1]
    if deployable and not config.permissions.restart:
        warnings.append("permissions.restart is empty: nobody may use /restart")
    if deployable and not config.permissions.rollback:
        warnings.append("permissions.rollback is empty: nobody may use /rollback")
    return errors, warnings


def _check_service(
    settings: Settings, env: Mapping[str, str], name: str, service: Service
) -> tuple[list[str], list[str]]:
    """One deployable service: the credentials and files its platform needs."""
    where = f"services.{name}"
    if service.platform == "railway":
        return [], _railway(settings, where, name)
    if service.platform == "vercel":
        return [], _vercel(settings, where, name, service)
    if service.platform == "kubernetes" and service.kubernetes is not None:
        return _kubernetes(env, where, service.kubernetes)
    if service.platform == "webhook" and service.webhook is not None:
        return [], _webhook(env, where, service.webhook)
    return [], []


def _railway(settings: Settings, where: str, name: str) -> list[str]:
    if settings.railway_token is None:
        return [f"{where}: RAILWAY_TOKEN is not set, so /restart and /rollback of {name} will fail"]
    return []


def _vercel(settings: Settings, where: str, name: str, service: Service) -> list[str]:
    warnings = []
    if settings.vercel_token is None:
        warnings.append(f"{where}: VERCEL_TOKEN is not set, so /restart and /rollback of {name} will fail")
    if service.vercel and not (service.vercel.team_id or settings.vercel_team_id):
        warnings.append(f"{where}: no vercel.team_id or VERCEL_TEAM_ID; fine for a personal account only")
    return warnings


def _kubernetes(env: Mapping[str, str], where: str, kubernetes: KubernetesTarget) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    token_env = kubernetes.token_env
    if token_env and not env.get(token_env, "").strip():
        warnings.append(f"{where}.kubernetes.token_env: environment variable {token_env} is not set")
    if not token_env and not (SERVICE_ACCOUNT / "token").exists():
        warnings.append(f"{where}.kubernetes: no token_env and no service-account token at {SERVICE_ACCOUNT}/token")
    ca_file = kubernetes.ca_file
    if ca_file is not None and not ca_file.exists():
        errors.append(f"{where}.kubernetes.ca_file: {ca_file} does not exist")
    return errors, warnings


def _webhook(env: Mapping[str, str], where: str, webhook: WebhookTarget) -> list[str]:
    secret_env = webhook.secret_env
    if secret_env is None:
        return [f"{where}.webhook: no secret_env, so deploy requests are sent unsigned"]
    if not env.get(secret_env, "").strip():
        return [f"{where}.webhook.secret_env: environment variable {secret_env} is not set"]
    return []
