"""Domain events published by the incident flows.

Escalation, playbooks and post-mortems subscribe to these instead of being called by the
incident code, so the incident lifecycle does not grow a dependency on every feature. Handlers
run in order after the state change is committed; one failing handler is logged and does not
stop the others or undo the change. `publish` returns what the failed handlers do, for the two
signals whose work is retried until done (IncidentChannelReady, IncidentResolved: see
bot/incidents/signal_work.py); for the others a failure is only logged (`notify`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    actor: str | None


@dataclass(frozen=True)
class IncidentDeclared(IncidentEvent):
    """Published as soon as the incident row is committed, before its channel exists.

    Paging must not wait for Slack: channel creation is a tier-2 method (about 20 a minute), and in a
    storm the Nth channel can be minutes away. What needs the channel waits for IncidentChannelReady.
    `severity` is the one it was declared with (a later change publishes IncidentSeverityChanged).
    """

    severity: str = ""


@dataclass(frozen=True)
class IncidentChannelReady(IncidentEvent):
    """Published each time a setup run ends with the incident's channel in place (at declare, or when
    someone presses Retry setup). Handlers must be idempotent: a retry publishes it again, and so does
    the resume sweep after a crash. It is published from a task of its own, and handlers do their
    work before they return (they start no task): returning is what marks the work done."""


@dataclass(frozen=True)
class IncidentAcknowledged(IncidentEvent):
    first: bool = True


@dataclass(frozen=True)
class IncidentStatusChanged(IncidentEvent):
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class IncidentSeverityChanged(IncidentEvent):
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class RoleAssigned(IncidentEvent):
    role: str = ""
    user: str = ""


@dataclass(frozen=True)
class IncidentResolved(IncidentEvent):
    """Published once the resolve is committed, from a task of its own; like IncidentChannelReady, its
    handlers do their work before they return (returning marks it done) and must be idempotent: the
    resume sweep publishes it again after a crash. The exceptions start a task whose work a crash
    does not lose anyway: the status page's resolution (its sweep), the alert cards (their retry
    loop), the archive timer (planned at start-up)."""


E = TypeVar("E", bound=IncidentEvent)
Handler = Callable[[Any], Awaitable[None]]


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[tuple[Handler, str]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]], *, does: str = "") -> None:
        """`does`: the handler's work in a few words ("start the playbook"), what responders are told
        when it fails for good; the handler's name by default."""
        self._handlers[event_type].append((handler, does or getattr(handler, "__qualname__", repr(handler))))

    async def publish(self, event: IncidentEvent) -> list[str]:
        """Run every handler, in order, each whatever the others did; returns what the failed ones do.

        A failure is logged here; acting on it is the caller's (empty: every handler returned).
        """
        failed = []
        for handler, does in self._handlers.get(type(event), []):
            try:
                await handler(event)
            except Exception:
                log.exception("handler %s (%s) failed for %s", getattr(handler, "__qualname__", handler), does, event)
                failed.append(does)
        return failed

    async def notify(self, event: IncidentEvent) -> None:
        """Publish where nothing acts on a failed handler: it is logged, and not retried."""
        await self.publish(event)
