"""PagerDuty Events API v2, for teams that already page through PagerDuty.

One PagerDuty alert per incident: the dedup key is derived from the incident, so a trigger sent
twice (a retry, or two replicas) lands on the same alert, and acknowledge/resolve find it without
storing anything.

A private incident is seen in PagerDuty by people outside its channel (everyone on the service, its
integrations, its reports), so it goes there as the `#incidents` announcement goes: a private incident
of this severity, no number, title, service or channel. The person paged learns the rest in Slack,
from the page's DM and the channel they are invited to. Its dedup key is derived from the incident's
secret, not its number: the same for trigger, acknowledge and resolve, and telling nobody which
incident it is.

PagerDuty asks senders to retry a 429 or a 5xx with backoff. Acknowledge and resolve are
retried (`RETRY_DELAYS`, or the `Retry-After` PagerDuty gives, whichever is longer): they are
sent once per incident, and one lost leaves PagerDuty paging people about an incident that is
over. A trigger is not retried here: it is part of a page, whose own attempts retry it (`is_transient`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.config import PagerDutyTarget
from bot.exceptions import ConfigError, PlatformAuthError, PlatformError, PlatformRateLimited
from bot.incidents.models import Incident

log = logging.getLogger(__name__)

PD_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
# Seconds before each retry of an acknowledge/resolve that met a 429, a 5xx or no answer (~1 min in all).
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
MAX_RETRY_AFTER = 60.0


class PagerDuty:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        routing_key: str,
        api_url: str = "https://events.pagerduty.com/v2/enqueue",
        source: str = "incident-bot",
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.http = http
        self.routing_key = routing_key
        self.api_url = api_url
        self.source = source
        self.timeout = timeout
        self.sleep = sleep
        self.retry_delays = retry_delays

    @classmethod
    def from_config(cls, target: PagerDutyTarget, *, http: httpx.AsyncClient) -> PagerDuty:
        key = os.environ.get(target.routing_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"escalation.pagerduty: environment variable {target.routing_key_env} (the Events v2 "
                "routing key of the PagerDuty service) is not set"
            )
        return cls(http=http, routing_key=key, api_url=target.api_url)

    @staticmethod
    def dedup_key(incident: Incident) -> str:
        # A private incident declared before it had a secret was triggered under its number: kept, so its
        # acknowledge and resolve still find that alert.
        alias = incident.alias("pagerduty") if incident.private else None
        return f"incident-bot/private/{alias}" if alias else f"incident-bot/{incident.ref}"

    async def trigger(self, incident: Incident) -> None:
        payload: dict[str, Any] = {
            "source": self.source,
            "severity": PD_SEVERITY.get(str(incident.severity), "error"),
        }
        if incident.private:
            payload["summary"] = f"[private incident] Severity {incident.severity} — details in Slack"
        else:
            payload["summary"] = f"{incident.ref} [{incident.severity}] {incident.title}"[:1024]
            payload["component"] = incident.service or None
            payload["custom_details"] = {"status": str(incident.status), "channel": incident.channel_name}
        await self._send("trigger", incident, {"payload": {k: v for k, v in payload.items() if v is not None}})

    async def acknowledge(self, incident: Incident) -> None:
        await self._send_retrying("acknowledge", incident)

    async def resolve(self, incident: Incident) -> None:
        await self._send_retrying("resolve", incident)

    async def _send_retrying(self, action: str, incident: Incident) -> None:
        """Retry what PagerDuty says may succeed later (429, 5xx, no answer); a refused key is final."""
        for attempt, delay in enumerate((*self.retry_delays, None)):
            try:
                await self._send(action, incident, {})
                return
            except PlatformAuthError:
                raise
            except PlatformError as exc:
                if delay is None or not is_transient(exc):
                    raise
                retry_after = exc.retry_after if isinstance(exc, PlatformRateLimited) else None
                wait = max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER))
                log.warning(
                    "pagerduty %s for %s failed (attempt %d), retrying in %gs: %s",
                    action,
                    incident.ref,
                    attempt + 1,
                    wait,
                    exc,
                )
                await self.sleep(wait)

    async def _send(self, action: str, incident: Incident, extra: dict[str, Any]) -> None:
        body = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": self.dedup_key(incident),
            **extra,
        }
        try:
            response = await self.http.post(self.api_url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise _Unavailable(
                f"PagerDuty {action} for {incident.ref} failed: {type(exc).__name__}: {exc}", platform="pagerduty"
            ) from exc
        if response.status_code == 429:
            retry = response.headers.get("Retry-After")
            raise PlatformRateLimited(
                f"PagerDuty throttled the {action} for {incident.ref}",
                platform="pagerduty",
                retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
            )
        if response.status_code in (401, 403):
            raise PlatformAuthError(
                "PagerDuty refused the routing key: check the Events v2 integration key", platform="pagerduty"
            )
        if response.status_code >= 300:
            detail = _error_detail(response)
            kind = _Unavailable if response.status_code >= 500 else PlatformError
            raise kind(
                f"PagerDuty {action} for {incident.ref} failed with HTTP {response.status_code}: {detail}",
                platform="pagerduty",
            )
        log.info("pagerduty %s sent for %s", action, incident.ref)


class _Unavailable(PlatformError):
    """PagerDuty had an error of its own (5xx) or did not answer: worth another try."""


def is_transient(exc: BaseException) -> bool:
    """PagerDuty throttled (429), failed (5xx) or did not answer: it asks senders to try again."""
    return isinstance(exc, (PlatformRateLimited, _Unavailable))


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        errors = data.get("errors")
        message = data.get("message", "")
        if isinstance(errors, list) and errors:
            return f"{message}: {'; '.join(str(e) for e in errors)}"[:300]
        return str(message)[:300]
    return str(data)[:200]
