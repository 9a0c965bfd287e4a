"""PagerDuty Events v2: trigger on the first page, acknowledge, resolve; one dedup key per incident."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.config import PagerDutyTarget
from bot.db import Database
from bot.escalation.models import Page, Reminder, ReminderKind
from bot.escalation.pagerduty import RETRY_DELAYS, PagerDuty
from bot.exceptions import ConfigError, PlatformAuthError, PlatformError, PlatformRateLimited
from tests.escalation.conftest import FakePager, MakeEscalator, Start, acknowledge, declare, resolve
from tests.fakes.pagerduty import FakePagerDuty

URL = "https://events.pagerduty.test/v2/enqueue"


@pytest.fixture
def fake_pd() -> FakePagerDuty:
    return FakePagerDuty()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
async def pagerduty(fake_pd: FakePagerDuty, slept: list[float]) -> AsyncIterator[PagerDuty]:
    async def sleep(seconds: float) -> None:  # the backoff, without waiting for it
        slept.append(seconds)

    async with httpx.AsyncClient(transport=httpx.MockTransport(fake_pd)) as http:
        yield PagerDuty(http=http, routing_key="R0UTINGKEY", api_url=URL, sleep=sleep)


async def test_trigger_acknowledge_resolve_share_one_dedup_key(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    escalator, incident_id = await start(pagerduty=pagerduty)
    await acknowledge(db, clock, incident_id, "U0BOB")
    await escalator.incident_acknowledged(incident_id, user="U0BOB")
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    assert [e["event_action"] for e in fake_pd.events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in fake_pd.events} == {"incident-bot/INC-1"}
    trigger = fake_pd.events[0]["payload"]
    assert trigger["severity"] == "critical"
    assert trigger["summary"] == "INC-1 [P1] Checkout returns 500"


async def test_pagerduty_failure_never_blocks_the_slack_page(
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    fake_pd.status = 500
    escalator, incident_id = await start(pagerduty=pagerduty)
    assert pager.levels() == [1] and pager.paged() == [(1, "U0ALICE")]
    for _ in range(2):  # PagerDuty is tried again with the page's retries, then given up on
        clock.advance(escalator.retry_backoff * 2)
        await escalator.run_due()
    assert pager.paged() == [(1, "U0ALICE")]
    assert [e["event_action"] for e in fake_pd.attempts] == ["trigger"] * 3
    pages = await escalator.pages(incident_id)
    assert pages[0].sent_at is not None
    assert pages[0].error and "PagerDuty trigger for INC-1 failed with HTTP 500" in pages[0].error


async def test_errors_are_classified(
    pagerduty: PagerDuty, fake_pd: FakePagerDuty, db: Database, clock: FakeClock
) -> None:
    incident = await declare(db, clock)
    fake_pd.status = 429
    with pytest.raises(PlatformRateLimited) as limited:
        await pagerduty.trigger(incident)
    assert limited.value.retry_after == 3.0
    fake_pd.status = 403
    with pytest.raises(PlatformAuthError, match="routing key"):
        await pagerduty.resolve(incident)


def test_routing_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    target = PagerDutyTarget(routing_key_env="TEST_PD_KEY")
    monkeypatch.delenv("TEST_PD_KEY", raising=False)
    with pytest.raises(ConfigError, match="TEST_PD_KEY"):
        PagerDuty.from_config(target, http=httpx.AsyncClient())
    monkeypatch.setenv("TEST_PD_KEY", "abc")
    assert PagerDuty.from_config(target, http=httpx.AsyncClient()).routing_key == "abc"


async def test_pagerduty_alone_is_a_page_even_when_slack_names_nobody(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    make_escalator: MakeEscalator,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    from bot.config import BotConfig

    escalator = make_escalator(BotConfig(), pagerduty=pagerduty)  # default bot.yml: `oncall`, no rotation
    assert escalator.pages_anyone
    incident = await declare(db, clock)
    assert incident.id is not None
    await escalator.incident_declared(incident.id)
    assert [e["event_action"] for e in fake_pd.events] == ["trigger"]
    (report,) = [r for _, r in pager.reports]
    assert report.paged == [] and report.via == ["PagerDuty"]
    (page,) = await escalator.pages(incident.id)
    assert page.sent_at is not None and page.attempts == 1


async def test_a_private_incident_reaches_pagerduty_as_its_announcement_does_under_an_unguessable_key(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    """PagerDuty is read by people outside the channel: severity only, no number, title, service or channel."""
    escalator, incident_id = await start(pagerduty=pagerduty, private=True)
    await acknowledge(db, clock, incident_id, "U0BOB")
    await escalator.incident_acknowledged(incident_id, user="U0BOB")
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    assert [e["event_action"] for e in fake_pd.events] == ["trigger", "acknowledge", "resolve"]
    (key,) = {e["dedup_key"] for e in fake_pd.events}  # one alert: acknowledge and resolve find it
    assert key.startswith("incident-bot/private/") and len(key) > len("incident-bot/private/") + 20
    assert fake_pd.events[0]["payload"] == {
        "summary": "[private incident] Severity P1 — details in Slack",
        "source": "incident-bot",
        "severity": "critical",
    }
    sent = str(fake_pd.events)
    assert f"INC-{incident_id}" not in sent and "C0INC1" not in sent and "Checkout" not in sent, sent
    other = await declare(db, clock, private=True, channel_id="C0INC2")  # another private incident, another alert
    await pagerduty.trigger(other)
    assert fake_pd.events[-1]["dedup_key"] not in (key, "incident-bot/INC-2")


async def test_a_private_incident_triggered_before_it_had_a_secret_is_resolved_under_its_old_key(
    fake_pd: FakePagerDuty, pagerduty: PagerDuty
) -> None:
    from bot.incidents.models import Incident

    incident = Incident(id=5, title="Leaked credentials", service="vault", declared_by="U0ALICE", private=True)
    await pagerduty.resolve(incident)
    assert fake_pd.events[0]["dedup_key"] == "incident-bot/INC-5"


async def test_acknowledge_and_resolve_are_retried_with_backoff_on_429_and_5xx(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
    slept: list[float],
) -> None:
    """PagerDuty asks for a retry on 429/5xx; sent once, a lost resolve kept people paged."""
    escalator, incident_id = await start(pagerduty=pagerduty)
    await acknowledge(db, clock, incident_id, "U0BOB")
    fake_pd.next_statuses = [429, 503]
    await escalator.incident_acknowledged(incident_id, user="U0BOB")
    assert slept == [3.0, 2.0]  # Retry-After when PagerDuty gives one, else the backoff
    await resolve(db, clock, incident_id)
    fake_pd.next_statuses = [500, 502, 500]
    await escalator.incident_resolved(incident_id)

    assert slept == [3.0, 2.0, 1.0, 2.0, 4.0]
    assert [e["event_action"] for e in fake_pd.events] == ["trigger", "acknowledge", "resolve"]
    assert [e["event_action"] for e in fake_pd.attempts].count("resolve") == 4


async def test_a_resolve_pagerduty_still_failed_fails_the_handler_so_its_retry_resolves_it(
    db: Database,
    clock: FakeClock,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    """PagerDuty down for longer than its own retries: the resolve's signal work is retried later
    (tests/incidents/test_signal_work.py), so the handler must fail, not return as if it were done."""
    escalator, incident_id = await start(pagerduty=pagerduty)
    await resolve(db, clock, incident_id)
    fake_pd.status = 503
    with pytest.raises(PlatformError, match="HTTP 503"):
        await escalator.incident_resolved(incident_id)
    async with db.session() as session:
        unsent = (
            await session.exec(select(Page).where(Page.incident_id == incident_id, col(Page.sent_at).is_(None)))
        ).all()
        assert unsent and all(page.cancelled_at is not None for page in unsent)  # the pages stopped all the same

    fake_pd.status = None
    await escalator.incident_resolved(incident_id)  # the signal work's retry
    assert [e["event_action"] for e in fake_pd.events] == ["trigger", "resolve"]
    async with db.session() as session:
        chases = (await session.exec(select(Reminder).where(Reminder.incident_id == incident_id))).all()
        assert [r.kind for r in chases].count(ReminderKind.POSTMORTEM) == 1  # planned once


async def test_a_refused_or_invalid_resolve_is_not_retried_and_a_lasting_outage_gives_up(
    db: Database, clock: FakeClock, pagerduty: PagerDuty, fake_pd: FakePagerDuty, slept: list[float]
) -> None:
    incident = await declare(db, clock)
    fake_pd.next_statuses = [403]
    with pytest.raises(PlatformAuthError):
        await pagerduty.resolve(incident)
    fake_pd.next_statuses = [400]
    with pytest.raises(PlatformError, match="HTTP 400"):
        await pagerduty.resolve(incident)
    assert slept == [] and len(fake_pd.attempts) == 2

    fake_pd.status = 503
    with pytest.raises(PlatformError, match="HTTP 503"):
        await pagerduty.acknowledge(incident)
    assert slept == list(RETRY_DELAYS) and len(fake_pd.attempts) == 2 + len(RETRY_DELAYS) + 1


async def test_a_trigger_pagerduty_throttled_or_failed_for_now_is_sent_again_with_the_pages_retry(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    make_escalator: MakeEscalator,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    """PagerDuty asks for a retry on 429/5xx: one 503 must not leave its people unpaged (no phone call)."""
    from bot.config import BotConfig

    for n, cfg in enumerate((None, BotConfig())):  # with Slack DMs too, and PagerDuty alone
        escalator = make_escalator(cfg, pagerduty=pagerduty)
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        fake_pd.events.clear()
        fake_pd.next_statuses = [503]
        await escalator.incident_declared(incident.id)
        assert fake_pd.events == []
        (report,) = [r for i, r in pager.reports if i == incident.id]
        assert "HTTP 503" in report.retrying["pagerduty"] and report.retry_in == escalator.retry_backoff
        clock.advance(escalator.retry_backoff)
        await escalator.run_due()
        assert [e["event_action"] for e in fake_pd.events] == ["trigger"], cfg
        assert fake_pd.events[0]["dedup_key"] == f"incident-bot/{incident.ref}"
        (page, *_) = await escalator.pages(incident.id)
        assert page.sent_at is not None and page.attempts == 2 and not page.error
        clock.advance(escalator.retry_backoff * 4)
        await escalator.run_due()
        assert [e["event_action"] for e in fake_pd.attempts[-2:]] == ["trigger", "trigger"]  # no third


async def test_a_trigger_pagerduty_refused_as_invalid_is_not_sent_again(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    fake_pd.next_statuses = [400]
    escalator, incident_id = await start(pagerduty=pagerduty)
    clock.advance(escalator.retry_backoff * 4)
    await escalator.run_due()
    assert [e["event_action"] for e in fake_pd.attempts] == ["trigger"]
    (page, *_) = await escalator.pages(incident_id)
    assert page.sent_at is not None and page.attempts == 1


async def test_a_trigger_waiting_for_its_retry_is_dropped_once_someone_acknowledged_in_slack(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    start: Start,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    """PagerDuty would only phone people about an incident someone has already taken."""
    fake_pd.next_statuses = [503]
    escalator, incident_id = await start(pagerduty=pagerduty)
    await acknowledge(db, clock, incident_id, "U0ALICE")
    await escalator.incident_acknowledged(incident_id, user="U0ALICE")
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert [e["event_action"] for e in fake_pd.attempts] == ["trigger", "acknowledge"]
    (page, *_) = await escalator.pages(incident_id)
    assert page.sent_at is not None and page.sent_to == ["U0ALICE"]
    assert page.error and "acknowledged" in page.error


async def test_no_trigger_for_an_incident_acknowledged_while_its_first_page_went_out(
    db: Database,
    clock: FakeClock,
    pager: FakePager,
    make_escalator: MakeEscalator,
    pagerduty: PagerDuty,
    fake_pd: FakePagerDuty,
) -> None:
    """The on-call taps Acknowledge in the DM before the page's channel half: PagerDuty must not phone them."""
    escalator = make_escalator(pagerduty=pagerduty)
    incident = await declare(db, clock)
    assert incident.id is not None
    incident_id = incident.id

    async def acknowledged_in_slack(user: str) -> None:
        await acknowledge(db, clock, incident_id, user)
        await escalator.incident_acknowledged(incident_id, user=user)

    pager.on_dm = acknowledged_in_slack
    await escalator.incident_declared(incident_id)
    assert pager.paged() == [(1, "U0ALICE")]
    assert "trigger" not in [e["event_action"] for e in fake_pd.attempts]
    (page, *_) = await escalator.pages(incident_id)
    assert page.sent_at is not None and page.error and "acknowledged" in page.error
