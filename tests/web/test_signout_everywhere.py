"""A sign-out ends the session wherever its cookie is, not only in the browser that clicked it:
a copy of the cookie (another profile, a shared machine, a stolen cookie) stops working at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from itsdangerous import URLSafeTimedSerializer
from sqlmodel import select

from bot.clock import FakeClock
from bot.web.models import EndedSession
from bot.web.session import SESSION_COOKIE
from tests.fault.support import DatabaseOutage, unreachable_url
from tests.harness import BotHarness
from tests.web.conftest import Browser


def copy_of(client: Browser, site: BotHarness) -> Browser:
    other = Browser(site)
    other.http.cookies.set(SESSION_COOKIE, client.http.cookies[SESSION_COOKIE])
    return other


async def ended_rows(site: BotHarness) -> list[EndedSession]:
    async with site.deps.db.session() as session:
        return list((await session.exec(select(EndedSession))).all())


async def test_a_copy_of_the_cookie_stops_working_when_its_session_signs_out(site: BotHarness) -> None:
    alice = Browser(site)
    await alice.sign_in()
    copy = copy_of(alice, site)
    again = Browser(site)
    try:
        await again.sign_in()  # a second sign-in of the same person is a session of its own
        assert (await copy.get("/")).status_code == 200
        out = await alice.post("/logout", {"csrf": await alice.csrf()})
        assert out.status_code == 200 and "signed out" in out.text
        refused = await copy.get("/stats")
        assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Fstats"
        assert (await again.get("/")).status_code == 200
    finally:
        for client in (alice, copy, again):
            await client.close()


async def test_ended_sessions_are_kept_only_until_their_cookie_would_have_expired(
    site: BotHarness, clock: FakeClock
) -> None:
    first, second = Browser(site), Browser(site)
    try:
        await first.sign_in()
        signed_in_at = clock.now()
        await first.post("/logout", {"csrf": await first.csrf()})
        (row,) = await ended_rows(site)
        assert row.expires_at == signed_in_at.replace(microsecond=0) + timedelta(hours=12)
        clock.advance(timedelta(hours=12, seconds=1))
        await second.sign_in()
        await second.post("/logout", {"csrf": await second.csrf()})
        assert [r.session_id for r in await ended_rows(site)] != [row.session_id]
        assert len(await ended_rows(site)) == 1
    finally:
        await first.close()
        await second.close()


async def test_a_sign_out_while_the_database_is_down_is_refused_not_half_done(
    site: BotHarness, database_url: str, tmp_path: Path
) -> None:
    alice = Browser(site)
    await alice.sign_in()
    copy = copy_of(alice, site)
    token = await alice.csrf()
    outage = DatabaseOutage(site.deps, unreachable_url(database_url, str(tmp_path)))
    try:
        with outage.window():
            out = await alice.post("/logout", {"csrf": token})
            assert out.status_code == 503 and "you are still signed in" in out.text
            assert out.headers["retry-after"] == "30"
            assert not [c for c in out.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
            assert (await copy.get("/")).status_code == 503
    finally:
        await outage.close()
    assert (await copy.get("/")).status_code == 200
    assert (await alice.post("/logout", {"csrf": token})).status_code == 200
    assert (await copy.get("/")).status_code == 303
    await alice.close()
    await copy.close()


async def test_a_cookie_signed_before_sessions_had_an_id_is_not_a_session(site: BotHarness) -> None:
    secret = site.settings.session_secret
    assert secret is not None
    old = URLSafeTimedSerializer(secret.get_secret_value(), salt="dashboard-session")
    browser = Browser(site)
    try:
        browser.http.cookies.set(SESSION_COOKIE, old.dumps({"u": "U0ALICE", "n": "alice", "t": "T0", "c": "x" * 32}))
        response = await browser.get("/")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    finally:
        await browser.close()
