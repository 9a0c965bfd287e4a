"""What a restart or rollback is while it waits for a click, while it runs, and when it is over.

A `Plan` is what the user confirms; between the two requests it travels as a small `PlanRef`
(stored as a pending action, named by id in the buttons), so nothing is kept in memory and any
replica can take the click. `Step` is where a running action is, `Report` how it ended.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.exceptions import InvalidState
from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.ops.models import Action, Outcome
from bot.platforms.base import Deployment, DeployStatus

PHASES = ("calling", "queued", "building", "deploying", "health")


@dataclass(frozen=True)
class Step:
    """Where a running action is: one of PHASES, how long it has run, and the deployment seen."""

    phase: str
    elapsed: timedelta
    deployment: Deployment | None = None
    note: str = ""


class OpsProgress(Protocol):
    """Shows a running action to the person who confirmed it (Slack: one message edited in place)."""

    async def progress(self, *, plan: Plan, step: Step) -> None: ...

    async def finished(self, *, plan: Plan, report: Report) -> None: ...


@dataclass(frozen=True)
class PlanRef:
    """The confirmation's content, small enough for a button value (Slack allows 2000 characters)."""

    action: Action
    service: str
    current_id: str | None
    target_id: str | None
    requested_by: str
    incident_id: int | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    shown_at: datetime | None = None  # when the confirmation was shown (read back from the stored one)
    redeploys_id: str | None = None  # restart with nothing live: the deployment the confirmation named

    @property
    def deploys_id(self) -> str | None:
        """The deployment whose build goes live: a rollback's target, or what a restart with nothing live
        redeploys (None for a restart in place); the audit's `target_deployment` from the start."""
        return self.target_id if self.action is Action.ROLLBACK else self.redeploys_id

    def encode(self) -> str:
        return json.dumps(
            {
                "a": self.action.value,
                "s": self.service,
                "c": self.current_id,
                "t": self.target_id,
                "u": self.requested_by,
                "i": self.incident_id,
                "r": self.request_id,
                "d": self.redeploys_id,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: str) -> PlanRef:
        try:
            raw = json.loads(value)
            return cls(
                action=Action(raw["a"]),
                service=str(raw["s"]),
                current_id=raw.get("c"),
                target_id=raw.get("t"),
                requested_by=str(raw["u"]),
                incident_id=int(raw["i"]) if raw.get("i") is not None else None,
                request_id=str(raw["r"]),
                redeploys_id=raw.get("d"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidState("this confirmation is damaged or from an older version: run the command again") from exc


@dataclass(frozen=True)
class Plan:
    action: Action
    service: str
    platform: str  # kind: railway | vercel | kubernetes | webhook
    platform_name: str  # shown: "Railway"
    current: Deployment | None
    target: Deployment | None = None  # rollback only
    candidates: tuple[Deployment, ...] = ()  # rollback: other deployments one may pick by ID
    problem: str = ""  # why there is nothing to confirm: a rollback without a usable target, or `blocked`
    blocked: bool = False  # the platform cannot do it in this state, whichever deployment is picked
    redeploys: Deployment | None = None  # restart with nothing live: what the platform deploys instead
    requested_by: str = ""
    incident_id: int | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def ready(self) -> bool:
        return not self.problem and (self.action is Action.RESTART or self.target is not None)

    @property
    def deploys(self) -> Deployment | None:
        """As `PlanRef.deploys_id`: the rollback's target, or the deployment a restart redeploys."""
        return self.target if self.action is Action.ROLLBACK else self.redeploys

    @property
    def ref(self) -> PlanRef:
        return PlanRef(
            action=self.action,
            service=self.service,
            current_id=self.current.id if self.current else None,
            target_id=self.target.id if self.target else None,
            requested_by=self.requested_by,
            incident_id=self.incident_id,
            request_id=self.request_id,
            redeploys_id=self.redeploys.id if self.redeploys else None,
        )

    def describe(self) -> str:
        """One plain line: what will happen."""
        live = self.current.id if self.current else "nothing live"
        if self.action is Action.RESTART and self.redeploys is not None:
            return (
                f"Redeploy {self.service} on {self.platform_name} from its newest deployment "
                f"{self.redeploys.id} ({self.redeploys.status.value}; nothing is live)"
            )
        if self.action is Action.RESTART:
            return f"Restart {self.service} on {self.platform_name} (live: {live})"
        target = self.target.id if self.target else "?"
        return f"Roll back {self.service} on {self.platform_name} from {live} to {target}"


@dataclass(frozen=True)
class Report:
    plan: Plan
    outcome: Outcome
    message: str
    deployment: Deployment | None = None
    deploy_status: DeployStatus | None = None
    timed_out: bool = False
    health: HealthResult | None = None
    durations: dict[str, timedelta] = field(default_factory=dict)
    audit_id: int | None = None
    actor: str = ""
    unsure: bool = False  # the platform took it (or may have), but never said how it ended

    @property
    def outcome_unknown(self) -> bool:
        """Not succeeded, yet not known to have failed: the deploy may still be under way."""
        return not self.succeeded and (self.timed_out or self.unsure)

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    @property
    def still_unhealthy(self) -> bool:
        """Deployed, but the health re-check still says failing, unreachable or degraded: not a fix."""
        health = self.health
        return self.succeeded and health is not None and health.state not in (HealthState.HEALTHY, HealthState.UNKNOWN)

    @property
    def health_unknown(self) -> bool:
        """Deployed, but the health re-check could not tell (no answer it can judge): not a confirmed fix."""
        return self.succeeded and self.health is not None and self.health.state is HealthState.UNKNOWN

    @property
    def health_unchecked(self) -> bool:
        """Deployed, but nothing re-checked its health (the service has no health_url): not a confirmed fix."""
        return self.succeeded and self.health is None

    @property
    def headline(self) -> str:
        """How it ended, in a few words, the same in Slack and on the timeline: a green "succeeded" over a
        service still failing, or one whose health could not be read, would read as "fixed" at 3 a.m."""
        if self.outcome_unknown:  # "failed" reads as "nothing changed, run it again"
            return "outcome unknown"
        if not self.succeeded:
            return "failed"
        if self.health is not None and self.still_unhealthy:
            return f"deployed, but {self.health.service} is still {self.health.state.value}"
        if self.health_unknown:
            return "deployed, health unknown"
        if self.health_unchecked:
            return "deployed, health not checked"
        return "succeeded"
