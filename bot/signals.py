"""Domain events published by the incident flows.

Escalation, playbooks and post-mortems subscribe to these instead of being called by the
incident code, so the incident lifecycle does not grow a dependency on every feature. Handlers
run in order after the state change is committed; one failing handler is logged and does not
stop the others or undo the change.
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
    """


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
        self._handlers: dict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers[event_type].append(handler)

    async def publish(self, event: IncidentEvent) -> None:
        for handler in self._handlers.get(type(event), []):
            try:
                await handler(event)
            except Exception:
                log.exception("handler %s failed for %s", getattr(handler, "__qualname__", handler), event)
