"""The bot's own metrics (Prometheus) and the hooks that feed them.

One `CollectorRegistry` per app (`deps.metrics`), never the global one, so two
apps in one process (tests, the demo) keep separate counts. Other domains increment the
counters they own through `deps.metrics`, e.g. escalation:

    deps.metrics.page_sent(late=True)      # or .pages_sent.inc() / .pages_late.inc()
    deps.metrics.page_failed()

Gauges that describe the database (open incidents, alerts waiting for Slack) are computed when
/metrics is scraped, so they are right even with several replicas.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.config import Severity

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

# Slack wants an ack within 3 s: the buckets are dense below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0)

# perf_counter() when the current request reached the bot (set by the HTTP server or the Bolt middleware).
request_started: ContextVar[float | None] = ContextVar("request_started", default=None)


class Metrics:
    """Every metric the bot exports; attribute names are the API other domains use."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.commands = Counter(
            "incident_bot_commands",
            "Slash commands handled, by command and /incident subcommand",
            ["command", "subcommand"],
            registry=r,
        )
        self.interactions = Counter(
            "incident_bot_interactions", "Button clicks, modal submissions and events handled", ["kind"], registry=r
        )
        self.ack_latency = Histogram(
            "incident_bot_ack_latency_seconds",
            "Time from a Slack request reaching the bot to its ack",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self._paging_and_slack(r)
        self._alerts_and_state(r)
        self.up = Gauge("incident_bot_up", "1 while the bot serves", registry=r)
        self.up.set(1)

    def _paging_and_slack(self, r: CollectorRegistry) -> None:
        self.pages_sent = Counter("incident_bot_pages_sent", "Pages delivered (DM and channel mention)", registry=r)
        self.pages_late = Counter(
            "incident_bot_pages_late", "Pages delivered after their due time (the bot was down or slow)", registry=r
        )
        self.pages_failed = Counter("incident_bot_pages_failed", "Pages that could not be delivered", registry=r)
        self.slack_api_errors = Counter(
            "incident_bot_slack_api_errors",
            "Slack Web API calls answered with ok=false or not answered, by method and error",
            ["method", "error"],
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "incident_bot_slack_api_ratelimited",
            "Slack Web API answers with HTTP 429, by method",
            ["method"],
            registry=r,
        )

    def _alerts_and_state(self, r: CollectorRegistry) -> None:
        self.alerts_received = Counter(
            "incident_bot_alerts_received",
            "Alert notifications accepted on /alerts/*, by source and status",
            ["source", "status"],
            registry=r,
        )
        self.alerts_rejected = Counter(
            "incident_bot_alerts_rejected",
            "Alert notifications refused, by source and reason",
            ["source", "reason"],
            registry=r,
        )
        self.alerts_declared = Counter(
            "incident_bot_alerts_declared",
            "Incidents declared from alerts, by source and how",
            ["source", "how"],
            registry=r,
        )
        self.open_incidents = Gauge(
            "incident_bot_open_incidents", "Incidents not resolved yet, by severity", ["severity"], registry=r
        )
        self.alerts_pending = Gauge(
            "incident_bot_alerts_pending", "Alert groups stored but not yet shown in Slack (Slack down?)", registry=r
        )
        self.pages_in_db = Gauge(
            "incident_bot_pages",
            "Escalation pages in the database by state (sent, late, failing, pending): right across replicas",
            ["state"],
            registry=r,
        )

    # --- helpers other domains call ------------------------------------------------------------

    def page_sent(self, *, late: bool = False) -> None:
        self.pages_sent.inc()
        if late:
            self.pages_late.inc()

    def page_failed(self) -> None:
        self.pages_failed.inc()

    def observe_ack(self, kind: str, seconds: float) -> None:
        self.ack_latency.labels(kind=kind).observe(max(seconds, 0.0))

    def slack_error(self, method: str, error: str) -> None:
        self.slack_api_errors.labels(method=method, error=error[:60] or "unknown").inc()

    # --- scrape ---------------------------------------------------------------------------------

    async def refresh(self, deps: Deps) -> None:
        """Recompute the gauges that come from the database; a failing query leaves the last values."""
        from sqlalchemy import func
        from sqlmodel import col, select

        from bot.incidents.models import Incident, Status

        try:
            async with deps.db.session() as session:
                rows = await session.exec(
                    select(Incident.severity, func.count())
                    .where(col(Incident.status) != Status.RESOLVED)
                    .group_by(Incident.severity)
                )
                counts = {str(sev): int(n) for sev, n in rows.all()}
            for sev in Severity:
                self.open_incidents.labels(severity=sev.value).set(counts.get(sev.value, 0))
        except Exception:
            log.exception("could not count open incidents for /metrics")
        await self._refresh_pages(deps)
        if deps.alerts is not None:
            try:
                self.alerts_pending.set(await deps.alerts.pending_count())
            except Exception:
                log.exception("could not count pending alerts for /metrics")

    async def _refresh_pages(self, deps: Deps) -> None:
        try:
            from bot.escalation.models import Page
        except ImportError:
            return
        from sqlalchemy import case, func
        from sqlmodel import col, select

        states = {
            "sent": col(Page.sent_at).is_not(None),
            "late": col(Page.sent_at).is_not(None) & col(Page.late).is_(True),
            "failing": col(Page.sent_at).is_(None) & col(Page.cancelled_at).is_(None) & col(Page.error).is_not(None),
            "pending": col(Page.sent_at).is_(None) & col(Page.cancelled_at).is_(None),
        }
        try:
            async with deps.db.session() as session:  # one scan: a count per state
                result = await session.exec(
                    select(*(func.count(case((condition, 1))) for condition in states.values())).select_from(Page)
                )
                counts: Any = result.one()  # a row: one count per state
            for state, count in zip(states, counts, strict=True):
                self.pages_in_db.labels(state=state).set(int(count))
        except Exception:
            log.exception("could not count pages for /metrics")

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def setup(deps: Deps) -> None:
    """Secrets never reach a log line, whoever logs them."""
    from bot import logs

    settings = deps.settings
    logs.register_secrets(
        s.get_secret_value() if s is not None else None
        for s in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.railway_token,
            settings.vercel_token,
            settings.alerts_token,
        )
    )


# --- Slack Web API calls: errors and 429s -----------------------------------------------------------


def slack_method(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or "unknown"


class SlackCallCounter:
    """A slack_sdk retry handler that never retries: it sees every answer and counts the bad ones.

    Put first in `client.retry_handlers`, so the rate-limit handler after it still does the retrying.
    """

    max_retry_count = 0

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def can_retry_async(
        self, *, state: Any, request: Any, response: Any = None, error: Exception | None = None
    ) -> bool:
        try:
            method = slack_method(getattr(request, "url", "") or "")
            if error is not None:
                self.metrics.slack_error(method, type(error).__name__)
            elif response is not None:
                status = int(getattr(response, "status_code", 200) or 200)
                body = getattr(response, "body", None)
                if status == 429:
                    self.metrics.slack_rate_limited.labels(method=method).inc()
                    self.metrics.slack_error(method, "ratelimited")
                elif status >= 500:
                    self.metrics.slack_error(method, f"http_{status}")
                elif isinstance(body, dict) and body.get("ok") is False:
                    self.metrics.slack_error(method, str(body.get("error") or "unknown"))
        except Exception:  # counting must never break a Slack call
            log.debug("could not count a Slack answer", exc_info=True)
        return False

    async def prepare_for_next_attempt_async(self, **_: Any) -> None:  # pragma: no cover - never retries
        return None


def install_slack_counter(client: Any, metrics: Metrics) -> None:
    handlers = client.retry_handlers
    if not any(isinstance(h, SlackCallCounter) for h in handlers):
        handlers.insert(0, SlackCallCounter(metrics))
