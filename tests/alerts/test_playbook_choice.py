"""The playbook an alert proposes comes from the playbooks' alert-label rules (when a registry is wired)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.alerts import rules
from bot.alerts.payloads import parse
from bot.config import BotConfig, Severity
from bot.deps import Deps
from bot.playbooks.loader import load_playbooks
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, alert_messages, groups, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import start_bot

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


class OldRegistry:
    """A registry from before alert labels: choose() takes title and service only."""

    def __init__(self) -> None:
        self.real = load_playbooks(PLAYBOOKS)

    def choose(self, *, title: str, service: str | None) -> Any:
        return self.real.choose(title=title, service=service)

    def get(self, playbook_id: str) -> Any:
        return self.real.get(playbook_id)

    def find(self, playbook_id: str) -> Any:
        return self.real.find(playbook_id)


class BrokenRegistry:
    def choose(self, **_: Any) -> Any:
        raise RuntimeError("registry bug")

    def find(self, playbook_id: str) -> Any:
        raise RuntimeError("registry bug")


def _note(alertname: str, **labels: str) -> Any:
    return parse("alertmanager", p.alertmanager([p.am_alert(alertname, summary="", description="", **labels)]))


def test_labels_pick_the_playbook_through_the_real_registry() -> None:
    registry = load_playbooks(PLAYBOOKS)
    config = BotConfig()
    assert rules.propose(_note("PostgresTooManyConnections"), config=config, registry=registry).playbook == "database"
    assert rules.propose(_note("InstanceDown"), config=config, registry=registry).playbook == "service-down"
    assert rules.propose(_note("Weird", category="security"), config=config, registry=registry).playbook == (
        "security-breach"
    )
    assert rules.propose(_note("DiskAlmostFull"), config=config, registry=registry).playbook is None


def test_the_playbook_severity_fills_in_when_labels_have_none() -> None:
    registry = load_playbooks(PLAYBOOKS)
    proposal = rules.propose(_note("HighLatency"), config=BotConfig(), registry=registry)
    assert (proposal.playbook, proposal.severity) == ("high-latency", Severity.P2)
    proposal = rules.propose(_note("HighLatency", severity="info"), config=BotConfig(), registry=registry)
    assert proposal.severity == Severity.P4  # the alert's own severity label wins


def test_registries_without_labels_or_that_fail_do_not_break_alerts() -> None:
    proposal = rules.propose(_note("Checkout down"), config=BotConfig(), registry=OldRegistry())
    assert proposal.playbook == "service-down"  # chosen by keyword: 'down'
    proposal = rules.propose(_note("InstanceDown"), config=BotConfig(), registry=BrokenRegistry())
    assert proposal.playbook is None
    assert rules.propose(_note("InstanceDown"), config=BotConfig(), registry=None).playbook is None


def test_an_auto_declare_rule_names_its_playbook_and_it_must_exist() -> None:
    config = BotConfig.model_validate(
        {"alerts": {"auto_declare": [{"match": {"team": "dba"}, "severity": "P2", "playbook": "database"}]}}
    )
    proposal = rules.propose(_note("Anything", team="DBA"), config=config, registry=load_playbooks(PLAYBOOKS))
    assert (proposal.auto, proposal.severity, proposal.playbook) == (True, Severity.P2, "database")
    config = BotConfig.model_validate({"alerts": {"auto_declare": [{"match": {"team": "dba"}, "playbook": "nope"}]}})
    proposal = rules.propose(_note("InstanceDown", team="dba"), config=config, registry=load_playbooks(PLAYBOOKS))
    assert proposal.playbook == "service-down"  # unknown rule playbook: fall back to the registry's choice


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "critical"}, Severity.P1),
        ({"severity": "Warning"}, Severity.P3),
        ({"priority": "P2"}, Severity.P2),
        ({"Severity": "info"}, Severity.P4),
        ({"severity": "page"}, Severity.P1),
        ({"severity": "whatever"}, None),
        ({}, None),
    ],
)
def test_severity_from_labels(labels: dict[str, str], expected: Severity | None) -> None:
    assert rules.severity_of(labels) == expected


async def test_the_alert_message_and_the_declared_incident_use_the_chosen_playbook(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)

    def wire_registry(deps: Deps) -> None:
        deps.playbooks = load_playbooks(PLAYBOOKS)

    bot, stop = await start_bot(fake=fake_slack, settings=settings, customize=wire_registry)
    try:
        await send(bot, p.alertmanager([p.am_alert("PostgresDown", severity="warning")], group_key="db"))
        assert "playbook database" in rendered(alert_messages(bot)[-1])
        await send(bot, p.alertmanager([p.am_alert("InstanceDown", severity="critical")], group_key="down"))
        incident = await bot.incident(1)
        assert incident.playbook_id == "service-down"
        assert [g.proposed_playbook for g in await groups(bot)] == ["database", "service-down"]
    finally:
        await stop()
