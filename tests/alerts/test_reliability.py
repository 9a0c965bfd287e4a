"""Never lose an alert answered 2xx: Slack down, back-off, restart, shutdown, storage failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from bot.clock import FakeClock
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, alert_messages, groups, processor, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot


async def test_slack_down_keeps_the_alert_pending_and_a_sweep_posts_it(bot: BotHarness) -> None:
    bot.fake.server_error("chat.postMessage", count=1, status=503)
    response = await send(bot, p.alertmanager([p.am_alert(severity="warning")]))
    assert response.status_code == 200
    assert alert_messages(bot) == []
    [group] = await groups(bot)
    assert group.pending and group.attempts == 1 and "post the alert" in (group.last_error or "")
    metrics = (await bot.http.get(f"{bot.url}/metrics")).text
    assert "incident_bot_alerts_pending 1.0" in metrics

    assert await processor(bot).sweep(due_only=False) == 1
    [message] = alert_messages(bot)
    assert "HighErrorRate" in rendered(message)
    [group] = await groups(bot)
    assert not group.pending and group.attempts == 0 and group.last_error is None
    assert "incident_bot_alerts_pending 0.0" in (await bot.http.get(f"{bot.url}/metrics")).text


async def test_retries_back_off(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    bot, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    await processor(bot).stop_retry_loop()  # this test drives the sweeps itself
    try:
        fake_slack.server_error("chat.postMessage", count=2)
        await send(bot, p.alertmanager([p.am_alert()]))
        assert await processor(bot).sweep() == 0  # not due yet
        clock.advance(6)
        assert await processor(bot).sweep() == 1  # due, fails again: the next wait is longer
        [group] = await groups(bot)
        assert group.attempts == 2 and group.next_attempt_at is not None
        assert (group.next_attempt_at - clock.now()).total_seconds() == 10
        clock.advance(9)
        assert await processor(bot).sweep() == 0
        clock.advance(1)
        assert await processor(bot).sweep() == 1
        assert len(alert_messages(bot)) == 1
    finally:
        await stop()


async def test_pending_alerts_are_posted_on_start(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> None:
    # The first run cannot reach Slack at all; the second one can.
    down = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        config=AUTO,
        slack_api_url="http://127.0.0.1:9/api/",
    )
    first, stop_first = await start_bot(fake=fake_slack, settings=down)
    response = await send(first, p.alertmanager([p.am_alert(severity="critical")]))
    assert response.status_code == 200
    incident = await first.incident(1)  # stored first, even though Slack is unreachable
    assert incident.channel_id is None and incident.setup_error
    [group] = await groups(first)
    assert group.pending and group.incident_id == 1
    await stop_first()
    assert alert_messages(first) == []

    up = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)
    second, stop_second = await start_bot(fake=fake_slack, settings=up)
    try:
        await asyncio.wait_for(processor(second).first_sweep.wait(), timeout=15)
        [message] = alert_messages(second)
        assert "INC-1" in rendered(message)
        incident = await second.incident(1)
        assert incident.channel_id is not None and incident.setup_error is None  # the sweep finished the setup
        [group] = await groups(second)
        assert not group.pending
        assert second.deps.alerts is not None
        assert await second.deps.alerts.pending_count() == 0
    finally:
        await stop_second()


async def test_shutdown_waits_for_slack_work(bot: BotHarness) -> None:
    done = asyncio.Event()

    async def slow() -> None:
        await asyncio.sleep(0.3)
        done.set()

    bot.deps.background.spawn(slow(), "slow Slack work")
    await processor(bot).stop()
    assert done.is_set()


async def test_storage_failure_answers_503_so_the_sender_retries(bot: BotHarness) -> None:
    async with bot.deps.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE alert_instances"))
        await conn.execute(text("DROP TABLE alert_groups"))
    response = await send(bot, p.alertmanager([p.am_alert()]))
    assert response.status_code == 503
    assert "send it again" in response.json()["error"]


async def test_unknown_sources_and_methods_are_not_routes(bot: BotHarness) -> None:
    assert (await bot.http.post(f"{bot.url}/alerts/nagios", json={})).status_code == 404
    assert (await bot.http.get(f"{bot.url}/alerts/alertmanager")).status_code == 405
