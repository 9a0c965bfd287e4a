"""`python -m bot check`: the user's post-mortem templates load and render, before an incident needs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.exceptions import ConfigError
from bot.postmortem import service
from bot.postmortem.data import (
    Action,
    ActionItemRow,
    Escalation,
    Event,
    Metric,
    Note,
    PlaybookStep,
    PostmortemData,
    Responder,
)
from bot.settings import Settings


def sample() -> PostmortemData:
    """A small incident with one of everything, so a template error shows up in `check`."""
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    m = timedelta(minutes=1)
    declared = Event(1, t0, 0 * m, "declared", "U0ALICE", "Sample", "Declared: Sample", True, None, {})
    alert = Event(2, t0 - m, -m, "alert", "alertmanager", "firing", "Alert: firing", False, None, {})
    return PostmortemData(
        ref="INC-1", number=1, title="Sample", status="resolved", severity="P1", severity_label="critical",
        severity_at_declaration="P2", services=["api"], description="What broke", playbook="service-down",
        channel_id="C0SAMPLE", channel_name="inc-1-sample", channel_url="https://slack.com/app_redirect?channel=C0SAMPLE",
        generated_at=t0 + 90 * m, declared_at=t0, declared_by="U0ALICE", resolved_by="U0ALICE",
        impact_start=t0 - 2 * m, impact_from="first alert", impact_set_by=None,
        resolution="Rolled back", end=t0 + 60 * m, duration=60 * m, ongoing_for=None,
        first_event=alert, first_alert=alert,
        detected=Metric("Impact started", t0 - 2 * m, 2 * m, "", None, "first alert"),
        declared=Metric("Declared", t0, 0 * m, "not declared", "U0ALICE"),
        acknowledged=Metric("First acknowledged", t0 + 4 * m, 4 * m, "not acknowledged", "U0BOB"),
        mitigated=Metric("Mitigated", None, None, "not mitigated"),
        resolved=Metric("Resolved", t0 + 60 * m, 60 * m, "not resolved yet", "U0ALICE"),
        commander="U0ALICE", comms=None, scribe=None,
        responders=[Responder("U0ALICE", ["commander"], t0, 3)],
        escalations=[Escalation(t0, 0 * m, "page", "1 (On-call)", ["U0BOB"], "", "")],
        pages=1, key_events=[declared], events=[alert, declared],
        actions=[Action(t0 + 9 * m, 9 * m, "rollback", "api", "succeeded", "U0BOB", "to dep-1")],
        playbook_steps=[PlaybookStep(t0, 0 * m, "Service down", "Check health", "done", "U0BOB", "")],
        notes=[Note(t0 + 5 * m, "U0BOB", "a note")],
        action_items=[ActionItemRow(1, "Add an alert", "U0BOB", False, "U0ALICE", t0 + 70 * m, "https://github.com/acme/api/issues/7")],
    )  # fmt: skip


def check(settings: Settings) -> tuple[list[str], list[str]]:
    folder = settings.config.postmortem.templates_dir
    if folder is None:
        return [], []
    errors: list[str] = []
    if not folder.is_dir():
        return [f"postmortem.templates_dir: {folder} is not a directory"], []
    overridden = [fmt for fmt, name in service.TEMPLATES.items() if (folder / name).is_file()]
    if not overridden:
        names = " or ".join(service.TEMPLATES.values())
        return [], [f"postmortem.templates_dir: {folder} has no {names}; the built-in templates are used"]
    for fmt in overridden:
        try:
            service.render(sample(), fmt=fmt, templates_dir=folder)
        except ConfigError as exc:
            errors.append(str(exc))
    return errors, []
