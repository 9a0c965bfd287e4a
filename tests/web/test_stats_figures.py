"""The dashboard's `/stats` page: the figures beside the charts count the incidents the charts count."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from tests.harness import BotHarness
from tests.web.conftest import Browser


def severity_rows(html: str) -> dict[str, list[str]]:
    """The "By severity" table: severity → its cells after the first."""
    table = html[html.index("<h2>By severity</h2>") : html.index("</table>", html.index("<h2>By severity</h2>"))]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        rows[cells[0]] = cells[1:]
    return rows


async def test_the_severity_table_counts_only_the_weeks_shown(
    site: BotHarness, alice: Browser, clock: FakeClock
) -> None:
    """Weeks start on Monday 00:00 UTC: an incident of the Sunday before is in neither the charts nor the table."""
    clock.set(datetime(2026, 11, 15, 20, 0, tzinfo=UTC))  # Sunday evening, the week before
    await site.declare("P1 Sunday outage")
    clock.set(datetime(2026, 11, 16, 0, 0, tzinfo=UTC))  # Monday midnight UTC: the first moment of the week
    incident = await site.declare("P2 Search is slow")
    clock.advance(timedelta(minutes=4))
    await site.command("ack", channel=incident.channel_id or "")
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # Friday

    page = await alice.get("/stats", params={"weeks": "1"})
    assert page.status_code == 200
    assert "1 incident declared from 2026-11-16 00:00:00 UTC" in page.text
    rows = severity_rows(page.text)
    assert list(rows) == ["P2"], rows
    assert rows["P2"][:3] == ["1", "4m 00s", "4m 00s"]
