"""Rendering step instructions with Jinja2.

Sandboxed (playbooks are operator-written, but a template must not reach Python internals) and
strict: an unknown variable is an error at `check` time, not a blank in a command someone pastes
into a production shell at 3 a.m.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from bot.config import BotConfig, Service

_env = SandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,  # Markdown, not HTML; the Slack layer escapes for mrkdwn
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)

# What a template may use; shown in error messages so a typo is easy to fix.
VARIABLES = (
    "service",
    "health_url",
    "platform",
    "namespace",
    "deployment",
    "channel",
    "channel_id",
    "playbook.id",
    "playbook.title",
    "incident.number",
    "incident.ref",
    "incident.title",
    "incident.severity",
    "incident.status",
    "incident.service",
    "incident.commander",
    "incident.declared_by",
    "incident.declared_at",
)


@dataclass(frozen=True)
class IncidentView:
    """What `{{ incident.* }}` shows; strings only, so a template never formats a Python object."""

    number: int
    ref: str
    title: str
    severity: str
    status: str
    service: str
    commander: str
    declared_by: str
    declared_at: str


@dataclass(frozen=True)
class PlaybookView:
    id: str
    title: str


class RenderError(Exception):
    """A template that cannot be rendered; the message is ready for a `file: step: field:` prefix."""


def _placeholder(name: str) -> str:
    return name.upper()


def build_context(
    *,
    incident: Any,
    playbook_id: str,
    playbook_title: str,
    service: str | None = None,
    config: BotConfig | None = None,
) -> dict[str, Any]:
    """Variables for an incident. Missing facts become CAPITALISED placeholders the reader fills in."""
    service_name = service or getattr(incident, "service", None) or None
    svc = config.services.get(service_name) if (config is not None and service_name) else None
    channel_name = getattr(incident, "channel_name", None)
    return {
        "service": service_name or _placeholder("service"),
        **_service_facts(svc, service_name),
        "channel": f"#{channel_name}" if channel_name else "the incident channel",
        "channel_id": getattr(incident, "channel_id", None) or "",
        "playbook": PlaybookView(id=playbook_id, title=playbook_title),
        "incident": _incident_view(incident, service_name),
    }


def _service_facts(svc: Service | None, service_name: str | None) -> dict[str, str]:
    """What bot.yml says of the service: health URL, platform, and where it runs on Kubernetes."""
    namespace = deployment = None
    if svc is not None and svc.kubernetes is not None:
        namespace, deployment = svc.kubernetes.namespace, svc.kubernetes.deployment
    return {
        "health_url": (svc.health_url if svc is not None and svc.health_url else _placeholder("health_url")),
        "platform": (svc.platform if svc is not None and svc.platform else _placeholder("platform")),
        "namespace": namespace or _placeholder("namespace"),
        "deployment": deployment or service_name or _placeholder("deployment"),
    }


def _incident_view(incident: Any, service_name: str | None) -> IncidentView:
    """The incident as templates see it: plain strings, never None (any object with these attributes)."""
    declared_at = getattr(incident, "declared_at", None)
    number = getattr(incident, "id", None) or 0
    return IncidentView(
        number=number,
        ref=f"INC-{number}",
        title=str(getattr(incident, "title", "") or ""),
        severity=str(getattr(incident, "severity", "") or ""),
        status=str(getattr(incident, "status", "") or "investigating"),
        service=service_name or _placeholder("service"),
        commander=str(getattr(incident, "commander", None) or getattr(incident, "declared_by", "") or ""),
        declared_by=str(getattr(incident, "declared_by", "") or ""),
        declared_at=declared_at.strftime("%Y-%m-%d %H:%M UTC") if declared_at else "",
    )


def sample_context(*, playbook_id: str = "sample", playbook_title: str = "Sample") -> dict[str, Any]:
    """A fully populated context for validation: every variable exists, none is empty."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    incident = SimpleNamespace(
        id=42,
        title="Checkout returns 502",
        severity="P1",
        status="investigating",
        service="gateway",
        commander="U0LEAD",
        declared_by="U0ALICE",
        declared_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        channel_name="inc-42-checkout-returns-502",
        channel_id="C0INC42",
    )
    return build_context(incident=incident, playbook_id=playbook_id, playbook_title=playbook_title)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    """Compiling is most of a render's cost, and every refresh of a progress message renders the
    same few texts again: compile each once."""
    return _env.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(source).render(context).strip()
    except UndefinedError as exc:
        known = ", ".join(VARIABLES)
        raise RenderError(f"{_undefined_message(exc)} (variables you can use: {known})") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except TemplateError as exc:
        raise RenderError(f"template error: {exc}") from exc


_FIELDS = {"incident": {f.name for f in fields(IncidentView)}, "playbook": {f.name for f in fields(PlaybookView)}}


def check_names(source: str, context: dict[str, Any]) -> None:
    """A name the sample render did not reach (in an `{% if %}` branch not taken) must exist too:
    otherwise the typo shows up only on the incident that takes that branch."""
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError:
        return  # `render` said so already
    known = ", ".join(VARIABLES)
    for name in sorted(meta.find_undeclared_variables(tree) - set(context) - set(_env.globals)):
        raise RenderError(f"unknown variable: {name!r} is undefined (variables you can use: {known})")
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}
    for node in tree.find_all(nodes.Getattr):
        name = node.node.name if isinstance(node.node, nodes.Name) else ""
        if name in _FIELDS and name not in assigned and node.attr not in _FIELDS[name]:
            raise RenderError(
                f"unknown variable: {name!r} has no attribute {node.attr!r} (variables you can use: {known})"
            )


def render_or_raw(source: str, context: dict[str, Any]) -> str:
    """At run time a render failure must not hide the step: show the raw text with a warning."""
    try:
        return render(source, context)
    except RenderError as exc:
        return f"{source.strip()}\n\n_(could not fill in the variables: {exc})_"


def _undefined_message(exc: UndefinedError) -> str:
    message = str(exc.message or exc)
    for internal, shown in (
        ("'bot.playbooks.render.IncidentView object'", "'incident'"),
        ("'bot.playbooks.render.PlaybookView object'", "'playbook'"),
    ):
        message = message.replace(internal, shown)
    return f"unknown variable: {message}"


def outside_view(incident: Any) -> SimpleNamespace:
    """What a template may say of a private incident outside its channel: number, severity, status, channel id.

    Not the channel's name: it is made from the title, so `{{ channel }}` reads "the incident channel"."""
    return SimpleNamespace(
        id=incident.id,
        severity=incident.severity,
        status=incident.status,
        title="(private)",
        channel_name=None,
        channel_id=incident.channel_id,
        declared_at=incident.declared_at,
    )
