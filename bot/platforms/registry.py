"""Building one deploy client per service from settings and bot.yml, once, at start-up.

Secrets come from the environment: RAILWAY_TOKEN / VERCEL_TOKEN (settings), and the variables
bot.yml names (`kubernetes.token_env`, `webhook.secret_env`). Every client shares the app's
`httpx.AsyncClient`, except a Kubernetes API server with its own CA (`ca_file`, the in-cluster
service-account CA) or `verify_tls: false`, which needs a client of its own (one per distinct
TLS setting, shared by the services that use it); `aclose()` closes those.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.clock import Clock, SystemClock
from bot.config import KubernetesTarget, Service
from bot.exceptions import ConfigError, NotFound
from bot.platforms.base import Platform
from bot.platforms.follow import RealTimer, Timer
from bot.platforms.kubernetes import IN_CLUSTER_URL, KubernetesPlatform
from bot.platforms.railway import RailwayPlatform
from bot.platforms.vercel import VercelPlatform
from bot.platforms.webhook import WebhookPlatform
from bot.settings import Settings

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Platforms:
    """The deploy client of each service, by service name."""

    def __init__(self, clients: Mapping[str, Platform], *, owned: list[httpx.AsyncClient] | None = None) -> None:
        self._clients = dict(clients)
        self._owned = owned or []

    def get(self, service: str) -> Platform:
        try:
            return self._clients[service]
        except KeyError:
            raise NotFound(
                f"service {service!r} has no deploy platform in bot.yml (add `platform:` and its section)"
            ) from None

    async def aclose(self) -> None:
        for client in self._owned:
            await client.aclose()


class FileToken:
    """A service-account token file, re-read now and then because Kubernetes rotates it.

    The read runs in a worker thread: it happens in the middle of a Slack request, on the event loop.
    """

    def __init__(self, path: Path, *, max_age: float = 60.0) -> None:
        self.path = path
        self.max_age = max_age
        self._value: str | None = None
        self._read_at = float("-inf")

    async def __call__(self) -> str | None:
        now = time.monotonic()
        if now - self._read_at > self.max_age:
            self._value = await asyncio.to_thread(self._read)
            self._read_at = now
        return self._value

    def _read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


def build_platforms(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    timer: Timer | None = None,
) -> Platforms:
    """`timer` times the waits a client makes itself (a read asked once more, a look for a new deployment)."""
    env = os.environ if environ is None else environ
    clock = clock or SystemClock()
    timer = timer or RealTimer()
    clients: dict[str, Platform] = {}
    owned: dict[tuple[bool, str | None], httpx.AsyncClient] = {}
    for name, service in settings.config.services.items():
        client = build_platform(
            name, service, settings=settings, http=http, clock=clock, timer=timer, environ=env, owned=owned
        )
        if client is not None:
            clients[name] = client
    return Platforms(clients, owned=list(owned.values()))


def build_platform(
    name: str,
    service: Service,
    *,
    settings: Settings,
    http: httpx.AsyncClient,
    clock: Clock,
    timer: Timer,
    environ: Mapping[str, str],
    owned: dict[tuple[bool, str | None], httpx.AsyncClient],
) -> Platform | None:

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    if service.platform == "railway" and service.railway is not None:
        return RailwayPlatform(
            http,
            target=service.railway,
            token=secret(settings.railway_token),
            api_url=settings.railway_api_url,
            token_kind=settings.railway_token_kind.strip().lower(),
            clock=clock,
            timer=timer,
        )
    if service.platform == "vercel" and service.vercel is not None:
        return VercelPlatform(
            http,
            target=service.vercel,
            token=secret(settings.vercel_token),
            team_id=settings.vercel_team_id,
            api_url=settings.vercel_api_url,
            timer=timer,
            clock=clock,
        )
    if service.platform == "kubernetes" and service.kubernetes is not None:
        target = service.kubernetes
        client = _kubernetes_client(name, target, http, owned)
        token: str | Callable[[], Awaitable[str | None]] | None = (
            (environ.get(target.token_env) or None) if target.token_env else FileToken(SERVICE_ACCOUNT / "token")
        )
        api_url = target.api_url or _in_cluster_url(environ)
        return KubernetesPlatform(client, target=target, token=token, api_url=api_url, clock=clock, timer=timer)
    if service.platform == "webhook" and service.webhook is not None:
        target_hook = service.webhook
        hook_secret = environ.get(target_hook.secret_env) if target_hook.secret_env else None
        return WebhookPlatform(http, service=name, target=target_hook, secret=hook_secret, clock=clock, timer=timer)
    return None


def _in_cluster_url(environ: Mapping[str, str]) -> str:
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    if host:
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port}"
    return IN_CLUSTER_URL


def _kubernetes_client(
    name: str,
    target: KubernetesTarget,
    http: httpx.AsyncClient,
    owned: dict[tuple[bool, str | None], httpx.AsyncClient],
) -> httpx.AsyncClient:
    ca_file = target.ca_file
    if ca_file is None and target.api_url is None and (SERVICE_ACCOUNT / "ca.crt").exists():
        ca_file = SERVICE_ACCOUNT / "ca.crt"
    if target.verify_tls and ca_file is None:
        return http
    key = (target.verify_tls, str(ca_file) if target.verify_tls else None)
    if key in owned:  # several Deployments in one cluster share one connection pool
        return owned[key]
    verify: ssl.SSLContext | bool
    if not target.verify_tls:
        verify = False
    else:
        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"services.{name}.kubernetes.ca_file: cannot load {ca_file}: {exc}") from exc
    owned[key] = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(15.0))
    return owned[key]
