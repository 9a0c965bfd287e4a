"""The database goes away for a moment while someone uses the dashboard: a clear 503 that says to
try again (with what they typed handed back), never the server's bare 500."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.postmortem.models import PostmortemSection
from tests.fault.support import DatabaseOutage, unreachable_url
from tests.harness import BotHarness
from tests.web.conftest import Browser, csrf_of


async def test_pages_and_writes_while_the_database_is_down_answer_503(
    site: BotHarness, alice: Browser, database_url: str, tmp_path: Path
) -> None:
    incident = await site.declare("P2 Queue backlog")
    page = await alice.get(f"/incidents/{incident.ref}/postmortem")
    outage = DatabaseOutage(site.deps, unreachable_url(database_url, str(tmp_path)))
    try:
        with outage.window():
            for path in ("/", f"/incidents/{incident.ref}", f"/incidents/{incident.ref}/postmortem", "/stats"):
                response = await alice.get(path)
                assert response.status_code == 503, path
                assert "database" in response.text and "try again" in response.text, path
                assert response.headers["retry-after"] == "30"
                assert "default-src 'none'" in response.headers["content-security-policy"]
            save = await alice.post(
                f"/incidents/{incident.ref}/postmortem",
                {"csrf": csrf_of(page.text), "root_cause": "A slow consumer", "expected_root_cause": ""},
            )
            assert save.status_code == 503 and "was not saved" in save.text
            assert "A slow consumer</textarea>" in save.text  # handed back, not lost
    finally:
        await outage.close()
    async with site.deps.db.session() as session:
        assert (await session.exec(select(PostmortemSection))).all() == []
    assert (await alice.get(f"/incidents/{incident.ref}")).status_code == 200
