"""Atlassian Statuspage's REST API (v1): create and update an incident, with its components' statuses.

`Authorization: OAuth <api key>`, the `{"incident": {...}}` envelope, on the shared httpx client.
Statuspage allows about one request a second per key (over a rolling minute) and answers 420 or
429 beyond it: requests are paced one a second, and a 420/429 waits (Retry-After, else a doubling
back-off) and tries again a few times before giving up to the outbox, which retries later.

Statuspage has no idempotency key, so a create carries our marker in the incident's `metadata`
(kept by Statuspage, never shown on the public page); an outbox retry after a create whose answer
was lost looks among the page's unresolved incidents for it before creating another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

THROTTLED = {420, 429}
KEY_REFUSED = {401: "refused the API key", 403: "did not allow the API key to do this"}
METADATA_KEY = "incident_bot"  # metadata's top-level values must be objects: {"incident_bot": {"ref": ...}}


class StatuspageError(Exception):
    """A call that did not go through; `transient` when trying again later may work."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class NotThere(StatuspageError):
    """A 404: what the call names is not on Statuspage (deleted there by hand, or a wrong id). Each
    caller says what that means for its call (`outbox`, `gone`)."""


class PageNotFound(StatuspageError):
    """The page itself answered 404: its id in bot.yml is wrong (configuration), so every call will fail
    until someone fixes it; kept and retried, and /health says so at once."""

    PREFIX = "Statuspage has no page "

    def __init__(self, page_id: str) -> None:
        super().__init__(
            f"{self.PREFIX}{page_id!r} (it answered 404): "
            "check status_page.statuspage.page_id in bot.yml (and STATUSPAGE_API_URL)",
            status=404,
            transient=False,
        )


@dataclass(frozen=True)
class IncidentChange:
    """One incident update as Statuspage takes it."""

    name: str
    status: str  # investigating | identified | monitoring | resolved
    body: str
    impact: str  # none | minor | major | critical
    components: dict[str, str]  # component id -> component status

    def envelope(self) -> dict[str, Any]:
        return {
            "incident": {
                "name": self.name,
                "status": self.status,
                "body": self.body,
                "impact_override": self.impact,
                "component_ids": list(self.components),
                "components": dict(self.components),
                "deliver_notifications": True,
            }
        }


class Statuspage:
    """A client for one page. One instance per process, so its pacing covers every call it makes."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        page_id: str,
        api_key: str,
        api_key_env: str = "STATUSPAGE_API_KEY",
        min_interval: float = 1.0,
        retries: int = 4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.page_id = page_id
        self.api_key = api_key
        self.api_key_env = api_key_env  # named in what a refused key tells people to check
        self.min_interval = min_interval
        self.retries = retries
        self.sleep = sleep
        self.timer = timer
        self._lock = asyncio.Lock()
        self._last: float | None = None

    async def create_incident(self, change: IncidentChange, *, marker: str | None = None) -> tuple[str, str | None]:
        """The new incident's id, and its first incident update's (None if the answer has none)."""
        payload = change.envelope()
        if marker:
            payload["incident"]["metadata"] = {METADATA_KEY: {"ref": marker}}
        body = await self._call("POST", f"/pages/{self.page_id}/incidents", payload)
        incident_id = body.get("id") if isinstance(body, dict) else None
        if not incident_id:
            raise StatuspageError("Statuspage created the incident but returned no id", transient=False)
        return str(incident_id), _update_id_in(body, change)

    async def find_unresolved(self, *, marker: str) -> str | None:
        """The id of the unresolved incident created with this marker, if there is one."""
        found = await self._unresolved(marker)
        return None if found is None else str(found["id"])

    async def adopt(self, *, marker: str, change: IncidentChange) -> tuple[str, str | None] | None:
        """The unresolved incident a create whose answer was lost made, with the id of its update `change`."""
        found = await self._unresolved(marker)
        return None if found is None else (str(found["id"]), _update_id_in(found, change))

    async def _unresolved(self, marker: str) -> dict[str, Any] | None:
        try:
            body = await self._call("GET", f"/pages/{self.page_id}/incidents/unresolved", None)
        except NotThere as exc:
            raise PageNotFound(self.page_id) from exc  # the page's own incidents: the page is not there
        for incident in body if isinstance(body, list) else []:
            metadata = incident.get("metadata") if isinstance(incident, dict) else None
            ours = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
            if isinstance(ours, dict) and ours.get("ref") == marker and incident.get("id"):
                return dict(incident)
        return None

    async def page_found(self) -> bool:
        """Whether the page answers (a read of its unresolved incidents): tells a wrong page id from a
        deleted incident when an incident's URL answers 404."""
        try:
            await self._call("GET", f"/pages/{self.page_id}/incidents/unresolved", None)
        except NotThere:
            return False
        return True

    async def update_incident(self, incident_id: str, change: IncidentChange) -> str | None:
        """Add the change as an incident update; its id there (None if the answer does not show it)."""
        body = await self._call("PATCH", f"/pages/{self.page_id}/incidents/{incident_id}", change.envelope())
        return _update_id_in(body, change)

    async def incident_updates(self, incident_id: str) -> list[dict[str, Any]]:
        """The incident's updates as Statuspage has them, newest first (`GET .../incidents/{id}`)."""
        body = await self._call("GET", f"/pages/{self.page_id}/incidents/{incident_id}", None)
        updates = body.get("incident_updates") if isinstance(body, dict) else None
        return [u for u in updates if isinstance(u, dict)] if isinstance(updates, list) else []

    async def edit_update(self, incident_id: str, update_id: str, *, body: str) -> None:
        """Correct an incident update's text in place (it keeps its time); subscribers are not notified again."""
        payload = {"incident_update": {"body": body, "deliver_notifications": False}}
        path = f"/pages/{self.page_id}/incidents/{incident_id}/incident_updates/{update_id}"
        await self._call("PATCH", path, payload)

    async def set_components(self, incident_id: str, components: dict[str, str]) -> None:
        """Set the incident's components' statuses without an incident update (no body) or notification."""
        payload = {
            "incident": {
                "component_ids": list(components),
                "components": dict(components),
                "deliver_notifications": False,
            }
        }
        await self._call("PATCH", f"/pages/{self.page_id}/incidents/{incident_id}", payload)

    async def delete_incident(self, incident_id: str) -> None:
        """Delete the incident from the page. A 404 (`NotThere`) is the incident gone already, or no such
        page: the caller tells which (`gone.told_apart`)."""
        await self._call("DELETE", f"/pages/{self.page_id}/incidents/{incident_id}", None)

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        delay = 1.0
        for attempt in range(self.retries + 1):
            response = await self._paced(method, path, payload)
            if response.status_code in THROTTLED and attempt < self.retries:
                wait = _retry_after(response) or delay
                log.warning("Statuspage throttled us (%s); trying again in %.1f s", response.status_code, wait)
                await self.sleep(wait)
                delay = min(delay * 2, 30.0)
                continue
            return _result(response, key_env=self.api_key_env)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _paced(self, method: str, path: str, payload: dict[str, Any] | None) -> httpx.Response:
        """One request at a time, at least `min_interval` apart (Statuspage's 1 request/second)."""
        async with self._lock:
            if self._last is not None:
                wait = self._last + self.min_interval - self.timer()
                if wait > 0:
                    await self.sleep(wait)
            try:
                return await self.http.request(
                    method,
                    self.base + path,
                    json=payload,
                    headers={"Authorization": f"OAuth {self.api_key}", "Accept": "application/json"},
                    timeout=httpx.Timeout(15.0),
                )
            except httpx.HTTPError as exc:
                raise StatuspageError(f"Statuspage unreachable: {type(exc).__name__}") from exc
            finally:
                self._last = self.timer()


def _update_id_in(incident: Any, change: IncidentChange) -> str | None:
    """The incident update a create or update just added, from the incident it answers with: its updates
    come newest first, so the newest with our status and text (one added by hand meanwhile is not ours)."""
    updates = incident.get("incident_updates") if isinstance(incident, dict) else None
    for update in updates if isinstance(updates, list) else []:
        if (
            isinstance(update, dict)
            and update.get("id")
            and (update.get("status"), update.get("body"))
            == (
                change.status,
                change.body,
            )
        ):
            return str(update["id"])
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None


def _result(response: httpx.Response, *, key_env: str) -> Any:
    status = response.status_code
    if 200 <= status < 300:
        try:
            return response.json()
        except ValueError:
            return {}
    detail = response.text[:200].strip()
    transient = status >= 500 or status in THROTTLED or status == 408
    if status in KEY_REFUSED:  # what to fix, not only Statuspage's "Could not authenticate"
        raise StatuspageError(
            f"Statuspage {KEY_REFUSED[status]} (HTTP {status}): check the API key in the environment variable "
            f"{key_env} (status_page.statuspage.api_key_env) and its user's access to the page ({detail})",
            status=status,
            transient=False,
        )
    error = NotThere if status == 404 else StatuspageError
    raise error(f"Statuspage answered {status}: {detail}", status=status, transient=transient)
