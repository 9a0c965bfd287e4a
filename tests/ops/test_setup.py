"""Building the deploy clients from settings, and what `python -m bot check` says about them."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from bot.config import BotConfig
from bot.exceptions import NotFound
from bot.ops.setup import check
from bot.platforms.kubernetes import KubernetesPlatform
from bot.platforms.railway import RailwayPlatform
from bot.platforms.registry import FileToken, build_platforms
from bot.platforms.vercel import VercelPlatform
from bot.platforms.webhook import WebhookPlatform
from bot.settings import Settings

SERVICES = {
    "gateway": {"platform": "railway", "railway": {"project_id": "p", "service_id": "s", "environment_id": "e"}},
    "web": {"platform": "vercel", "vercel": {"project_id": "prj_web"}},
    "api": {
        "platform": "kubernetes",
        "kubernetes": {"namespace": "prod", "deployment": "api", "token_env": "K8S_TOKEN"},
    },
    "billing": {
        "platform": "webhook",
        "webhook": {"url": "https://deploy.example.com/hook", "secret_env": "HOOK_SECRET"},
    },
    "docs": {"health_url": "https://docs.example.com/health"},
}


def _settings(permissions: dict | None = None, **env: object) -> Settings:
    config = BotConfig.model_validate({"services": SERVICES, "permissions": permissions or {}})
    return Settings.load(_env_file=None, config=config, **env)


async def test_every_platform_service_gets_its_client() -> None:
    settings = _settings(railway_token="rw", vercel_token="vc", vercel_team_id="team_1")
    async with httpx.AsyncClient() as http:
        platforms = build_platforms(settings, http, environ={"K8S_TOKEN": "kt", "HOOK_SECRET": "hs"})

        assert isinstance(platforms.get("gateway"), RailwayPlatform)
        vercel = platforms.get("web")
        assert isinstance(vercel, VercelPlatform) and vercel.team_id == "team_1"
        k8s = platforms.get("api")
        assert isinstance(k8s, KubernetesPlatform) and k8s.token == "kt"
        assert k8s.api_url == "https://kubernetes.default.svc"
        hook = platforms.get("billing")
        assert isinstance(hook, WebhookPlatform) and hook.secret == "hs"
        with pytest.raises(NotFound, match="no deploy platform"):
            platforms.get("docs")
        await platforms.aclose()


async def test_in_cluster_address_comes_from_the_service_environment() -> None:
    async with httpx.AsyncClient() as http:
        platforms = build_platforms(
            _settings(), http, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
        )
        assert platforms.get("api").api_url == "https://10.0.0.1:6443"  # type: ignore[attr-defined]


async def test_a_kubernetes_server_with_its_own_ca_gets_its_own_client(tmp_path: Path) -> None:
    services = {
        "api": {
            "platform": "kubernetes",
            "kubernetes": {
                "namespace": "prod",
                "deployment": "api",
                "api_url": "https://k8s.example.com",
                "verify_tls": False,
            },
        }
    }
    settings = Settings.load(_env_file=None, config=BotConfig.model_validate({"services": services}))
    async with httpx.AsyncClient() as http:
        platforms = build_platforms(settings, http, environ={})
        client = platforms.get("api")
        assert client.endpoint.http is not http  # type: ignore[attr-defined]
        await platforms.aclose()


async def test_services_in_one_cluster_share_one_client() -> None:
    target = {"namespace": "prod", "api_url": "https://k8s.example.com", "verify_tls": False}
    services = {
        name: {"platform": "kubernetes", "kubernetes": {**target, "deployment": name}} for name in ("api", "worker")
    }
    settings = Settings.load(_env_file=None, config=BotConfig.model_validate({"services": services}))
    async with httpx.AsyncClient() as http:
        platforms = build_platforms(settings, http, environ={})
        api, worker = platforms.get("api"), platforms.get("worker")
        assert api.endpoint.http is worker.endpoint.http is not http  # type: ignore[attr-defined]
        await platforms.aclose()


async def test_the_service_account_token_is_read_in_a_thread_and_again_when_old(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    token = FileToken(path, max_age=3600)
    threads: list[int] = []
    read = token._read

    def spy() -> str | None:
        threads.append(threading.get_ident())
        return read()

    token._read = spy  # type: ignore[method-assign]

    assert await token() == "first"
    path.write_text("rotated\n")
    assert await token() == "first"  # not re-read within max_age
    token.max_age = 0
    assert await token() == "rotated"
    path.unlink()
    assert await token() is None
    assert len(threads) == 3 and threading.get_ident() not in threads


def test_check_warns_about_missing_secrets_and_empty_permissions() -> None:
    errors, warnings = check(_settings(), environ={})

    assert errors == []
    text = "\n".join(warnings)
    assert "services.gateway: RAILWAY_TOKEN is not set" in text
    assert "services.web: VERCEL_TOKEN is not set" in text
    assert "services.api.kubernetes.token_env: environment variable K8S_TOKEN is not set" in text
    assert "services.billing.webhook.secret_env: environment variable HOOK_SECRET is not set" in text
    assert "permissions.restart is empty" in text and "permissions.rollback is empty" in text


def test_check_is_quiet_when_everything_is_set() -> None:
    settings = _settings(
        {"restart": ["U0LEAD"], "rollback": ["U0LEAD"]}, railway_token="rw", vercel_token="vc", vercel_team_id="t"
    )
    assert check(settings, environ={"K8S_TOKEN": "kt", "HOOK_SECRET": "hs"}) == ([], [])


def test_check_refuses_an_unknown_railway_token_kind() -> None:
    errors, _ = check(_settings(railway_token_kind="team"), environ={})
    assert errors and "RAILWAY_TOKEN_KIND" in errors[0]
