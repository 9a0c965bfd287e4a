"""`services:` (health checks and deploy platforms) and `permissions:` (who may act on them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import model_validator

from bot.config.base import Interval, Principal, Strict, WebUrl


class RailwayTarget(Strict):
    project_id: str
    service_id: str
    environment_id: str


class VercelTarget(Strict):
    project_id: str
    team_id: str | None = None  # falls back to VERCEL_TEAM_ID


class KubernetesTarget(Strict):
    namespace: str
    deployment: str
    api_url: WebUrl | None = None  # falls back to the in-cluster API server
    token_env: str | None = None  # env var holding a bearer token
    ca_file: Path | None = None
    verify_tls: bool = True


class WebhookTarget(Strict):
    url: WebUrl
    secret_env: str | None = None  # env var holding the HMAC secret


Platform = Literal["railway", "vercel", "kubernetes", "webhook"]


class Service(Strict):
    health_url: WebUrl | None = None
    timeout: Interval = timedelta(seconds=5)
    expected_status: int | None = None
    description: str = ""
    platform: Platform | None = None
    railway: RailwayTarget | None = None
    vercel: VercelTarget | None = None
    kubernetes: KubernetesTarget | None = None
    webhook: WebhookTarget | None = None
    deploy_timeout: Interval = timedelta(minutes=10)

    @model_validator(mode="after")
    def _platform_section_present(self) -> Service:
        if self.platform and getattr(self, self.platform) is None:
            raise ValueError(f"platform is {self.platform!r} but the {self.platform!r} section is missing")
        for other in ("railway", "vercel", "kubernetes", "webhook"):
            if other != self.platform and getattr(self, other) is not None:
                raise ValueError(f"section {other!r} given but platform is {self.platform!r}")
        return self


class Permissions(Strict):
    restart: list[Principal] = []
    rollback: list[Principal] = []
    # Who sees every private incident besides its channel's members (e.g. the security team).
    private_incidents: list[Principal] = []
