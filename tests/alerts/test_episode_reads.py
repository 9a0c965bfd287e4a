"""What a delivery reads of its group's alerts: a resolved group firing again starts its new episode clean,
so the alerts it stored for the last one are not read only to be thrown away."""

from __future__ import annotations

from bot.alerts.payloads import parse
from tests.alerts import payloads as p
from tests.alerts.helpers import groups, processor, send
from tests.harness import BotHarness
from tests.incidents.test_declaration_cost import recorded


def _alert_reads(log: list[str]) -> list[str]:
    return [sql for sql in log if sql.startswith("SELECT alert_instances.")]


async def test_a_new_episode_does_not_read_the_last_ones_alerts(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert()]))
    await send(bot, p.alertmanager([p.am_alert(status="resolved")]))
    refire = parse("alertmanager", p.alertmanager([p.am_alert(starts_at="2026-11-20T10:00:00Z")]))
    with recorded(bot.deps.db.engine.sync_engine) as log:
        await processor(bot).ingest(refire)
    [group] = await groups(bot)
    assert group.episode == 2 and group.status == "firing" and group.firing_total == 1
    assert _alert_reads(log) == []


async def test_a_repeat_of_a_firing_group_still_reads_its_alerts(bot: BotHarness) -> None:
    """Its stored alerts say what is new and what a late resolve is: the read is needed there."""
    await send(bot, p.alertmanager([p.am_alert()]))
    with recorded(bot.deps.db.engine.sync_engine) as log:
        await processor(bot).ingest(parse("alertmanager", p.alertmanager([p.am_alert()])))
    assert len(_alert_reads(log)) == 1
