"""Building a platform client against its local fake, the same way for all four platforms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.clock import SystemClock
from bot.config import KubernetesTarget, RailwayTarget, VercelTarget, WebhookTarget
from bot.platforms.base import Platform
from bot.platforms.kubernetes import KubernetesPlatform
from bot.platforms.railway import RailwayPlatform
from bot.platforms.vercel import VercelPlatform
from bot.platforms.webhook import WebhookPlatform
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.railway import FakeRailway
from tests.fakes.vercel import FakeVercel
from tests.fakes.webhook import SECRET, FakePlatform, FakeWebhook

PLATFORMS = ["railway", "vercel", "kubernetes", "webhook"]


class FakeTimer:
    """Monotonic time that moves only when someone sleeps: a ten-minute deadline runs in milliseconds."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Env:
    kind: str
    fake: Any  # FakeRailway | FakeVercel | FakeKubernetes | FakeWebhook
    client: Platform
    make: Callable[..., Platform]  # another client, e.g. with a wrong token


def make_fake(kind: str) -> FakePlatform:
    return {"railway": FakeRailway, "vercel": FakeVercel, "kubernetes": FakeKubernetes, "webhook": FakeWebhook}[kind]()


def client_for(
    kind: str, fake: Any, http: httpx.AsyncClient, *, token: str | None = None, timeout: float = 5.0, **extra: Any
) -> Platform:
    if kind == "railway":
        return RailwayPlatform(
            http,
            target=RailwayTarget(
                project_id=fake.project_id, service_id=fake.service_id, environment_id=fake.environment_id
            ),
            token=token if token is not None else fake.account_token,
            api_url=fake.api_url,
            token_kind=extra.get("token_kind", "auto"),
            timeout=timeout,
            timer=extra.get("timer") or FakeTimer(),
            clock=extra.get("clock") or SystemClock(),
        )
    if kind == "vercel":
        return VercelPlatform(
            http,
            target=VercelTarget(project_id=fake.project_id),
            token=token if token is not None else fake.token,
            team_id=extra.get("team_id", fake.team_id),
            api_url=fake.url,
            timeout=timeout,
            timer=extra.get("timer") or FakeTimer(),
            clock=extra.get("clock") or SystemClock(),
        )
    if kind == "kubernetes":
        return KubernetesPlatform(
            http,
            target=KubernetesTarget(namespace=fake.namespace, deployment=fake.name, api_url=fake.url),
            token=token if token is not None else fake.token,
            clock=extra.get("clock") or SystemClock(),
            timeout=timeout,
            timer=extra.get("timer") or FakeTimer(),
        )
    if kind == "webhook":
        return WebhookPlatform(
            http,
            service=fake.service,
            target=WebhookTarget(url=fake.hook_url, secret_env="DEPLOY_WEBHOOK_SECRET"),
            secret=token if token is not None else SECRET,
            clock=extra.get("clock") or SystemClock(),
            timeout=timeout,
            timer=extra.get("timer") or FakeTimer(),
        )
    raise ValueError(kind)


def service_section(kind: str, fake: Any) -> dict[str, Any]:
    """The bot.yml `services.<name>` platform part that points at a fake."""
    if kind == "railway":
        return {
            "platform": "railway",
            "railway": {
                "project_id": fake.project_id,
                "service_id": fake.service_id,
                "environment_id": fake.environment_id,
            },
        }
    if kind == "vercel":
        return {"platform": "vercel", "vercel": {"project_id": fake.project_id, "team_id": fake.team_id}}
    if kind == "kubernetes":
        return {
            "platform": "kubernetes",
            "kubernetes": {
                "namespace": fake.namespace,
                "deployment": fake.name,
                "api_url": fake.url,
                "token_env": "TEST_K8S_TOKEN",
            },
        }
    if kind == "webhook":
        return {"platform": "webhook", "webhook": {"url": fake.hook_url, "secret_env": "DEPLOY_WEBHOOK_SECRET"}}
    raise ValueError(kind)


def number_ids(fake: Any) -> None:
    """Give the seeded deployments the ids 1, 2, 3 (oldest first), as a Kubernetes revision or a
    deploy tool's build number is: an id spelled like a revision must then be read per platform."""
    key = "uid" if fake.platform == "vercel" else "id"
    if fake.platform == "kubernetes":
        return  # a revision already
    renamed = {}
    for number, deployment in enumerate(reversed(fake.deployments), start=1):
        renamed[deployment[key]] = str(number)
        deployment[key] = str(number)
    if fake.platform == "vercel" and fake.production_id is not None:
        fake.production_id = renamed[fake.production_id]
