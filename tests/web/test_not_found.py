"""What the dashboard answers for an incident or a follow-up it does not have, or that a link made up."""

from __future__ import annotations

from sqlmodel import select

from bot.incidents.models import ActionItem
from tests.harness import BotHarness
from tests.web.conftest import Browser, csrf_of


async def test_the_404_page_names_an_incident_ref_but_not_a_sentence_from_a_link(
    site: BotHarness, alice: Browser
) -> None:
    spoof = "has moved: sign in at evil.example to see INC-7"
    page = await alice.get(f"/incidents/{spoof}")
    assert page.status_code == 404 and "No incident that you can see" in page.text
    assert "evil.example" not in page.text and "has moved" not in page.text
    named = await alice.get("/incidents/INC-7")
    assert named.status_code == 404 and "No incident INC-7 that you can see" in named.text


async def test_malformed_incident_and_follow_up_ids_are_a_404(site: BotHarness, alice: Browser) -> None:
    incident = await site.declare("P2 Queue backlog")
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    await site.command("action add a consumer lag alert", channel=channel)
    page = await alice.get(f"/incidents/{incident.ref}")
    token = csrf_of(page.text)
    for ref in ("INC-abc", "INC--1", "INC-0", "INC-99999999999999999999", "INC-\u0661", "1\u0669"):
        assert (await alice.get(f"/incidents/{ref}")).status_code == 404, ref
    for item in ("99999999999999999999", "2147483648", "-1", "0", "abc", "\u0661", "1e3"):
        path = f"/incidents/{incident.ref}/followups/{item}"
        assert (await alice.post(path, {"csrf": token, "done": "1"})).status_code == 404, item
        assert (await alice.post(f"{path}/issue", {"csrf": token})).status_code == 404, item
    async with site.deps.db.session() as session:
        [row] = (await session.exec(select(ActionItem))).all()
    assert row.done is False
