"""The dashboard's title search looks only at incidents the reader may see: hidden incidents' titles
change neither which rows are checked nor the "narrow the filters" notice."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.incidents import search
from bot.incidents.access import Access
from bot.incidents.models import INCIDENTS, Incident
from tests.harness import BotHarness
from tests.web.conftest import Browser

NOTICE = "Only the newest matches are read"


async def hide(site: BotHarness, *, count: int, title: str) -> None:
    """`count` private incidents whose channel is not made yet: only their declarer may see them."""
    at = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
    rows = [
        {
            "title": f"{title} {n}",
            "severity": "P2",
            "status": "investigating",
            "private": True,
            "declared_by": "U0SEC",
            "declared_at": at,
            "resolution": "",
        }
        for n in range(count)
    ]
    async with site.deps.db.session() as session:
        conn = await session.connection()
        await conn.execute(INCIDENTS.insert(), rows)
        await session.commit()


async def test_hidden_matches_do_not_cut_the_list_nor_raise_the_notice(site: BotHarness, alice: Browser) -> None:
    await site.declare("P2 Secret store latency")
    await hide(site, count=search.MAX_ROWS, title="Secret key rotation")  # newer than the one alice may see
    page = await alice.get("/", params={"q": "secret"})
    assert page.status_code == 200
    assert "Secret store latency" in page.text and "1–1 of 1 incident" in page.text
    assert NOTICE not in page.text and "rotation" not in page.text


async def test_the_notice_counts_visible_matches_only(site: BotHarness) -> None:
    for n in range(3):
        await site.declare(f"P3 Disk full on db-{n}")
    await hide(site, count=4, title="Disk full on the vault")
    access, db = site.deps.incident_access, site.deps.db
    cut = await search.find(db=db, access=access, person="U0ALICE", filters=search.Filters(text="disk"), limit=2)
    assert [i.title for i in cut.incidents] == ["Disk full on db-2", "Disk full on db-1"] and cut.truncated
    whole = await search.find(db=db, access=access, person="U0ALICE", filters=search.Filters(text="DISK"), limit=3)
    assert len(whole.incidents) == 3 and not whole.truncated  # four hidden matches are not "more"
    some = await search.find(
        db=db, access=access, person="U0ALICE", filters=search.Filters(text="db-"), limit=3, batch=2
    )
    assert [i.title for i in some.incidents] == [f"Disk full on db-{n}" for n in (2, 1, 0)] and not some.truncated
    # A rare word does not read the whole table: past `scan` rows the page asks to narrow the filters.
    bounded = await search.find(
        db=db, access=access, person="U0ALICE", filters=search.Filters(text="db-0"), batch=2, scan=4
    )
    assert bounded.incidents == [] and bounded.truncated


class Recording(Access):
    """The real access check, noting which incidents it was asked about."""

    def __init__(self, real: Access) -> None:
        super().__init__(membership=real.membership, permissions=real.permissions, clock=real.clock)
        self.asked: list[int] = []

    async def can_see(self, *, person: str, incident: Incident) -> bool:
        self.asked.append(incident.id or 0)
        return await super().can_see(person=person, incident=incident)


async def test_which_rows_are_checked_does_not_depend_on_hidden_titles(site: BotHarness, alice: Browser) -> None:
    await site.declare("P2 Checkout is slow")
    await hide(site, count=3, title="Leaked signing key")
    asked: dict[str, list[int]] = {}
    for text in ("signing", "nothing-at-all"):
        site.deps.access = access = Recording(site.deps.incident_access)
        page = await alice.get("/", params={"q": text})
        assert page.status_code == 200 and "No incidents match these filters." in page.text
        asked[text] = access.asked
    assert asked["signing"] == asked["nothing-at-all"] and sorted(asked["signing"]) == [1, 2, 3, 4]
