"""A person deactivated in Slack (or removed from the workspace) loses the dashboard within a minute,
not when their 12-hour cookie expires; while Slack cannot say, responders are not locked out."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from tests.harness import BotHarness
from tests.web.conftest import Browser, make_private


async def test_a_deactivated_person_loses_the_dashboard_and_the_private_incident(
    site: BotHarness, clock: FakeClock
) -> None:
    incident = await site.declare("P1 Card data exposed service:payments")
    await make_private(site, incident.id or 0)
    assert incident.channel_id
    site.fake.channels[incident.channel_id].members.add("U0CAROL")  # a responder in the private channel
    carol = Browser(site)
    try:
        await carol.sign_in("U0CAROL")
        assert (await carol.get(f"/incidents/{incident.ref}")).status_code == 200

        site.fake.users["U0CAROL"].deleted = True  # offboarded: Slack still lists her in the channel
        clock.advance(timedelta(seconds=61))
        for path in (f"/incidents/{incident.ref}", "/", "/stats"):
            refused = await carol.get(path)
            assert refused.status_code == 303, path
            assert refused.headers["location"].startswith("/login?next="), path
        written = await carol.post(f"/incidents/{incident.ref}/postmortem", {"impact": "x", "csrf": "x"})
        assert written.status_code == 401
    finally:
        await carol.close()


async def test_a_person_gone_from_the_workspace_loses_the_dashboard(site: BotHarness, clock: FakeClock) -> None:
    carol = Browser(site)
    try:
        await carol.sign_in("U0CAROL")
        assert (await carol.get("/")).status_code == 200
        del site.fake.users["U0CAROL"]  # users.info: user_not_found
        clock.advance(timedelta(seconds=61))
        assert (await carol.get("/")).status_code == 303
    finally:
        await carol.close()


async def test_while_slack_cannot_say_the_session_goes_on_and_asks_once_a_minute(
    site: BotHarness, clock: FakeClock
) -> None:
    carol = Browser(site)
    try:
        await carol.sign_in("U0CAROL")
        assert (await carol.get("/")).status_code == 200
        asked = len(site.fake.calls_to("users.info"))
        assert (await carol.get("/stats")).status_code == 200
        assert len(site.fake.calls_to("users.info")) == asked  # believed for a minute

        clock.advance(timedelta(seconds=61))
        site.fake.fail("users.info", "internal_error", count=5)
        assert (await carol.get("/")).status_code == 200
        assert (await carol.get("/oncall")).status_code == 200
        assert len(site.fake.calls_to("users.info")) == asked + 1  # the failure is remembered too
    finally:
        await carol.close()


async def test_signing_in_again_as_someone_the_workspace_does_not_know_is_refused_not_a_redirect_loop(
    site: BotHarness, clock: FakeClock
) -> None:
    """Slack's sign-in succeeds, but users.info does not find the person: every page would send them
    back to sign in, and the browser would give up on "too many redirects"."""
    carol = Browser(site)
    try:
        await carol.sign_in("U0CAROL")
        del site.fake.users["U0CAROL"]
        clock.advance(timedelta(seconds=61))
        assert (await carol.get("/")).status_code == 303
        site.fake.oidc.signed_in = "U0CAROL"
        login = await carol.start_login("/")
        refused = await carol.get(login.callback)
        assert refused.status_code == 403 and "not a member of this workspace" in refused.text
        assert "set-cookie" not in refused.headers or "incident_bot_session=" not in refused.headers["set-cookie"]
        assert (await carol.get("/")).status_code == 303
    finally:
        await carol.close()
