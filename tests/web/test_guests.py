"""A Slack guest signed in to the dashboard sees only the incidents whose channel they are in, and
the sign-in check's users.info serves the access check too (one call a minute per person)."""

from __future__ import annotations

from tests.harness import BotHarness
from tests.web.conftest import Browser, make_private


async def test_a_guest_sees_only_the_incidents_of_their_channels_a_member_sees_all(site: BotHarness) -> None:
    theirs = await site.declare("P2 Vendor API returns 500s service:vendor")
    other = await site.declare("P1 Payroll batch stuck service:payroll")
    assert theirs.channel_id and other.channel_id
    site.fake.add_user("U0VENDOR", "vendor", guest="multi")
    site.fake.channels[theirs.channel_id].members.add("U0VENDOR")
    guest = Browser(site)
    try:
        await guest.sign_in("U0VENDOR")
        listing = await guest.get("/")
        assert listing.status_code == 200
        assert "Vendor API returns 500s" in listing.text and "1–1 of 1 incident" in listing.text
        assert "Payroll batch stuck" not in listing.text and 'value="payroll"' not in listing.text
        assert 'value="vendor"' in listing.text
        hidden = await guest.get(f"/incidents/{other.ref}")
        missing = await guest.get("/incidents/INC-77")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text.replace(other.ref, "INC-77") == missing.text and "Payroll" not in hidden.text
        assert (await guest.get(f"/incidents/{theirs.ref}")).status_code == 200
        asked = [c for c in site.fake.calls_to("users.info") if c.args.get("user") == "U0VENDOR"]
        assert len(asked) == 1  # the sign-in check's answer serves the access check too
    finally:
        await guest.close()
    carol = Browser(site)  # a full member still sees every public incident
    try:
        await carol.sign_in("U0CAROL")
        listing = await carol.get("/")
        assert "Vendor API returns 500s" in listing.text and "Payroll batch stuck" in listing.text
        assert 'value="payroll"' in listing.text
        assert (await carol.get(f"/incidents/{other.ref}")).status_code == 200
    finally:
        await carol.close()


def cell(service: str) -> str:
    return f'<td data-label="Service">{service}</td>'


async def test_a_guests_stats_page_counts_only_the_incidents_of_their_channels(site: BotHarness) -> None:
    theirs = await site.declare("P2 Vendor API returns 500s service:vendor")
    await site.declare("P1 Payroll batch stuck service:payroll")
    await site.declare("P3 Search is slow service:search")
    await make_private(site, 3)
    assert theirs.channel_id
    site.fake.add_user("U0VENDOR", "vendor", guest="multi")
    site.fake.channels[theirs.channel_id].members.add("U0VENDOR")
    guest = Browser(site)
    try:
        await guest.sign_in("U0VENDOR")
        page = await guest.get("/stats")
        assert page.status_code == 200
        assert "1 incident declared from" in page.text
        assert cell("vendor") in page.text and "payroll" not in page.text and cell("(private)") not in page.text
        assert '<span class="sev sev-P1">' not in page.text and '<span class="sev sev-P3">' not in page.text
        assert "Only the incidents you can see are counted." in page.text and "counted under" not in page.text
    finally:
        await guest.close()
    carol = Browser(site)  # a full member: every incident, the private one without its service
    try:
        await carol.sign_in("U0CAROL")
        page = await carol.get("/stats")
        assert "3 incidents declared from" in page.text
        assert cell("payroll") in page.text and cell("(private)") in page.text and "search" not in page.text
        assert '<span class="sev sev-P1">' in page.text and '<span class="sev sev-P3">' in page.text
        assert "Private incidents you cannot see are counted under" in page.text
    finally:
        await carol.close()
