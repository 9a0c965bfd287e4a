"""What is written about a restart or rollback: one audit row per outcome, and its timeline lines.

Every outcome (refused, cancelled, started, failed, succeeded) is audited; in an incident it is
also written to the timeline (`deploy` and `health` events), in the same transaction.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.health.checker import HealthResult
from bot.ops import service as audit
from bot.ops.models import AuditLog, Outcome
from bot.ops.plans import PlanRef, Report
from bot.timeline import events


async def record_outcome(
    deps: Deps,
    ref: PlanRef,
    *,
    actor: str,
    channel_id: str | None,
    platform: str | None,
    outcome: Outcome,
    timeline_text: str,
    detail: str = "",
    claim: bool = False,
    finished: bool = True,
    exclusive: bool = False,
) -> AuditLog:
    """One audit row about `ref`; `claim` uses up the confirmation (a second click is AlreadyHandled);
    `exclusive` refuses it (`audit.Busy`) while another action on the service runs or ran since it was shown."""
    async with deps.db.session() as session:
        return await audit.record(
            session,
            at=deps.clock.now(),
            actor=actor,
            action=ref.action,
            service=ref.service,
            platform=platform,
            from_deployment=ref.current_id,
            target_deployment=ref.deploys_id,
            outcome=outcome,
            detail=detail,
            incident_id=ref.incident_id,
            channel_id=channel_id,
            finished=finished,
            request_id=ref.request_id if claim else None,
            timeline_text=timeline_text,
            exclusive=exclusive,
            since=ref.shown_at,
        )


def timeline_events(report: Report) -> list[tuple[str, events.Payload]]:
    """The `deploy` event of a finished action, and the `health` re-check after it when there was one."""
    plan = report.plan
    deployed = events.Deployed(
        action=plan.action.value,
        service=plan.service,
        platform=plan.platform,
        outcome=report.outcome.value,
        from_deployment=plan.current.id if plan.current else None,
        to=plan.deploys.id if plan.deploys else None,
        deployment=report.deployment.id if report.deployment else None,
        durations={k: round(v.total_seconds(), 1) for k, v in report.durations.items()},
        health=report.health.state.value if report.health is not None else _unchecked(report),
        unknown=report.outcome_unknown or None,
    )
    # The words of the Slack report (`{describe}: {headline}; {message}`), so both tell the same.
    out: list[tuple[str, events.Payload]] = [(f"{plan.describe()}: {report.headline}; {report.message}", deployed)]
    if report.health is not None:
        checked = events.HealthChecked(results=[health_check(report.health)])
        out.append((f"After the {plan.action.value}: {report.health.summary()}", checked))
    return out


def _unchecked(report: Report) -> str | None:
    """`Deployed.health` of a deploy nothing re-checked (no health_url), so the timeline does not read "succeeded"."""
    return events.HEALTH_UNCHECKED if report.health_unchecked else None


def health_check(result: HealthResult) -> events.HealthCheck:
    """A health result as the timeline keeps it (read back by the post-mortem)."""
    return events.HealthCheck(
        service=result.service,
        state=result.state.value,
        http_status=result.http_status,
        latency_ms=result.latency_ms,
        reason=result.reason,
        failing=[d.name for d in result.failing],
    )
