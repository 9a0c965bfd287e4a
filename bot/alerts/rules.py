"""What an alert proposes: severity (from its labels), service (a `service` label naming a service in
bot.yml), playbook (the playbooks' alert-label rules), and whether an `alerts.auto_declare` rule
declares at once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.alerts.payloads import Notification
from bot.config import AutoDeclareRule, BotConfig, Severity

log = logging.getLogger(__name__)

SEVERITY_LABELS = ("severity", "priority", "sev", "level")
_SEVERITY_WORDS: dict[str, Severity] = {}
for _sev, _words in {
    Severity.P1: "p1 sev1 sev-1 s1 1 critical crit page emergency fatal disaster",
    Severity.P2: "p2 sev2 sev-2 s2 2 high error major",
    Severity.P3: "p3 sev3 sev-3 s3 3 medium warning warn minor average",
    Severity.P4: "p4 sev4 sev-4 s4 4 low info information informational none",
}.items():
    for _word in _words.split():
        _SEVERITY_WORDS[_word] = _sev


def severity_of(labels: Mapping[str, str]) -> Severity | None:
    lowered = {k.lower(): v for k, v in labels.items()}
    for key in SEVERITY_LABELS:
        value = lowered.get(key)
        if value is not None:
            found = _SEVERITY_WORDS.get(value.strip().lower())
            if found is not None:
                return found
    return None


def service_of(labels: Mapping[str, str], config: BotConfig) -> str | None:
    lowered = {k.lower(): v for k, v in labels.items()}
    value = (lowered.get("service") or "").strip().lower()
    return value if value and value in config.services else None


def merged_labels(note: Notification) -> list[dict[str, str]]:
    """Each firing alert's labels over the group's common labels (all alerts when none is firing)."""
    alerts = note.firing or note.alerts
    return [{**note.common_labels, **a.labels} for a in alerts] or [dict(note.common_labels)]


def rule_matches(rule: AutoDeclareRule, labels: Mapping[str, str]) -> bool:
    lowered = {k.lower(): v.strip().lower() for k, v in labels.items()}
    return all(lowered.get(k.lower()) == str(v).strip().lower() for k, v in rule.match.items())


def describe_rule(rule: AutoDeclareRule) -> str:
    match = ", ".join(f"{k}={v}" for k, v in rule.match.items())
    extra = f", playbook {rule.playbook}" if rule.playbook else ""
    return f"{match} → {rule.severity}{extra}"


def auto_declare_rule(note: Notification, config: BotConfig) -> AutoDeclareRule | None:
    """The first rule any firing alert of the group matches; resolved notifications never declare."""
    if note.status != "firing" or not note.firing:
        return None
    candidates = merged_labels(note)
    for rule in config.alerts.auto_declare:
        if any(rule_matches(rule, labels) for labels in candidates):
            return rule
    return None


def choose_playbook(registry: Any, *, title: str, service: str | None, labels: Mapping[str, str]) -> str | None:
    """The playbook the registry's rules pick; any failure (or no registry) means none."""
    if registry is None or not hasattr(registry, "choose"):
        return None
    try:
        chosen = registry.choose(title=title, service=service, labels=dict(labels))
    except TypeError:  # an older registry without alert labels
        try:
            chosen = registry.choose(title=title, service=service)
        except Exception:
            log.warning("the playbook registry failed to choose for an alert", exc_info=True)
            return None
    except Exception:
        log.warning("the playbook registry failed to choose for an alert", exc_info=True)
        return None
    playbook_id = getattr(chosen, "id", None)
    return str(playbook_id) if playbook_id else None


def known_playbook(registry: Any, playbook_id: str | None) -> str | None:
    """`playbook_id` when the registry has it (or there is no registry to ask); None otherwise."""
    if not playbook_id:
        return None
    if registry is None:
        return playbook_id
    try:
        if hasattr(registry, "find"):
            found = registry.find(playbook_id)
            return str(found.id) if found is not None else None
        return str(registry.get(playbook_id).id)
    except Exception:
        return None


def playbook_severity(registry: Any, playbook_id: str | None) -> Severity | None:
    if registry is None or not playbook_id:
        return None
    try:
        value = getattr(registry.get(playbook_id), "severity", None)
        return Severity(value) if value else None
    except Exception:
        return None


@dataclass(frozen=True)
class Proposal:
    severity: Severity
    service: str | None
    playbook: str | None
    rule: AutoDeclareRule | None

    @property
    def auto(self) -> bool:
        return self.rule is not None


def propose(note: Notification, *, config: BotConfig, registry: Any) -> Proposal:
    labels_sets = merged_labels(note)
    # The most severe severity any firing alert carries.
    severities = [s for s in (severity_of(labels) for labels in labels_sets) if s is not None]
    severity = min(severities, key=lambda s: s.value) if severities else None
    service = service_of(note.common_labels, config) or next(
        (s for s in (service_of(labels, config) for labels in labels_sets) if s), None
    )
    rule = auto_declare_rule(note, config)
    playbook = known_playbook(registry, rule.playbook) if rule and rule.playbook else None
    if playbook is None:
        playbook = choose_playbook(registry, title=note.title(), service=service, labels=labels_sets[0])
    if rule is not None:
        severity = rule.severity
    if severity is None:
        severity = playbook_severity(registry, playbook)
    return Proposal(severity=severity or Severity.P2, service=service, playbook=playbook, rule=rule)
