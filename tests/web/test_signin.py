"""Sign in with Slack through the real server against the fake Slack: the happy path and every
way it must fail (wrong state, another workspace, a replayed code, a stale or forged session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.exceptions import ConfigError
from bot.web.session import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness
from tests.web.conftest import Browser, query_of


async def test_without_the_settings_the_dashboard_says_how_to_enable_it_and_shows_nothing(
    bot: BotHarness,
) -> None:
    await bot.declare("P1 Checkout is down")
    async with httpx.AsyncClient(base_url=bot.url) as http:
        for path in ("/", "/incidents/INC-1", "/stats", "/oncall", "/login"):
            response = await http.get(path)
            assert response.status_code == 503, path
            assert "SLACK_OIDC_CLIENT_ID" in response.text and "SESSION_SECRET" in response.text
            assert "Checkout" not in response.text
            assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_sign_in_with_slack_sets_a_signed_http_only_lax_session(site: BotHarness) -> None:
    await site.declare("P1 Checkout is down")
    client = Browser(site)
    try:
        first = await client.get("/incidents/INC-1")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2Fincidents%2FINC-1"

        login = await client.start_login("/incidents/INC-1")
        sent = query_of(login.authorize)
        assert login.authorize.startswith(site.fake.authorize_url)
        assert sent["scope"] == "openid profile email" and sent["response_type"] == "code"
        assert sent["client_id"] == site.fake.oidc.client_id
        assert sent["redirect_uri"] == f"{site.url}/auth/slack/callback"
        assert sent["team"] == site.fake.team_id
        assert len(sent["state"]) > 20 and len(sent["nonce"]) > 20 and sent["state"] != sent["nonce"]

        done = await client.http.get(login.callback)
        assert done.status_code == 303 and done.headers["location"] == "/incidents/INC-1"
        cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        assert any(c.startswith(LOGIN_COOKIE + "_") and '=""' in c for c in done.headers.get_list("set-cookie"))

        exchange = site.fake.calls_to("openid.connect.token")
        assert len(exchange) == 1 and exchange[0].response["ok"] is True
        assert exchange[0].args["redirect_uri"] == f"{site.url}/auth/slack/callback"
        assert site.fake.calls_to("openid.connect.userInfo")[0].response["ok"] is True

        page = await client.get("/incidents/INC-1")
        assert page.status_code == 200
        assert "Checkout is down" in page.text and "alice" in page.text
    finally:
        await client.close()


async def test_the_cookies_are_secure_when_the_dashboard_is_served_over_https(site: BotHarness) -> None:
    site.settings.public_url = "https://bot.example.com"
    site.fake.oidc.redirect_urls = ["https://bot.example.com/auth/slack/callback"]
    async with httpx.AsyncClient(base_url=site.url, follow_redirects=False) as http:
        login = await http.get("/login")
        pending = next(c for c in login.headers.get_list("set-cookie") if c.startswith(LOGIN_COOKIE + "_"))
        assert "Secure" in pending and "HttpOnly" in pending and "SameSite=Lax" in pending
        back = await http.get(login.headers["location"])
        assert back.headers["location"].startswith("https://bot.example.com/auth/slack/callback?")
        # A browser sends a Secure cookie only over https; the test client is told to send it here.
        response = await http.get(
            "/auth/slack/callback?" + back.headers["location"].split("?", 1)[1],
            headers={"Cookie": pending.split(";", 1)[0]},
        )
        session = [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
        assert response.status_code == 303 and session and "Secure" in session[0] and "HttpOnly" in session[0]


async def test_a_wrong_state_is_refused_before_the_code_is_used(site: BotHarness) -> None:
    client = Browser(site)
    try:
        login = await client.start_login()
        params = query_of(login.callback)
        response = await client.get("/auth/slack/callback", params={"code": params["code"], "state": "forged"})
        assert response.status_code == 400 and "state" in response.text
        assert site.fake.calls_to("openid.connect.token") == []
        assert SESSION_COOKIE not in client.http.cookies
        assert (await client.get("/")).status_code == 303
    finally:
        await client.close()


async def test_a_callback_in_another_browser_is_refused(site: BotHarness) -> None:
    starter, other = Browser(site), Browser(site)
    try:
        login = await starter.start_login()
        response = await other.http.get(login.callback)  # no sign-in cookie: not the browser that started it
        assert response.status_code == 400 and "another browser" in response.text
        assert site.fake.calls_to("openid.connect.token") == []
    finally:
        await starter.close()
        await other.close()


async def test_another_workspace_is_refused(site: BotHarness) -> None:
    site.fake.oidc.team_id = "T0OTHER"
    client = Browser(site)
    try:
        login = await client.start_login()
        response = await client.http.get(login.callback)
        assert response.status_code == 403
        assert "Other Team" in response.text and "another workspace" in response.text
        assert SESSION_COOKIE not in client.http.cookies
        assert (await client.get("/")).status_code == 303
    finally:
        await client.close()


@pytest.mark.parametrize("year", [2001, 2040])  # far from the real time either way: only the test's clock counts
async def test_a_fresh_id_token_is_accepted_by_the_clock_it_was_issued_with(
    site: BotHarness, clock: FakeClock, year: int
) -> None:
    clock.set(datetime(year, 3, 1, 12, 0, tzinfo=UTC))
    client = Browser(site)
    try:
        await client.sign_in("U0ALICE")
        assert SESSION_COOKIE in client.http.cookies
        assert (await client.get("/")).status_code == 200
    finally:
        await client.close()


async def test_an_expired_id_token_is_refused(site: BotHarness, clock: FakeClock) -> None:
    site.fake.oidc.token_lifetime = -1  # Slack's clock and ours agree, and the token's exp is a second ago
    client = Browser(site)
    try:
        login = await client.start_login()
        response = await client.http.get(login.callback)
        assert response.status_code == 400 and "The sign-in token has expired" in response.text
        assert SESSION_COOKIE not in client.http.cookies
        assert (await client.get("/")).status_code == 303
    finally:
        await client.close()


async def test_a_token_minted_for_another_sign_in_is_refused_by_its_nonce(site: BotHarness) -> None:
    client = Browser(site)
    try:
        login = await client.start_login()
        state = query_of(login.callback)["state"]
        code = site.fake.oidc.issue_code(
            "U0ALICE",
            client_id=site.fake.oidc.client_id,
            redirect_uri=f"{site.url}/auth/slack/callback",
            nonce="someone-elses-nonce",
            team_id=site.fake.team_id,
        )
        response = await client.get("/auth/slack/callback", params={"code": code, "state": state})
        assert response.status_code == 400 and "nonce" in response.text
        assert SESSION_COOKIE not in client.http.cookies
    finally:
        await client.close()


async def test_a_replayed_code_and_slack_errors_are_refused(site: BotHarness) -> None:
    client = Browser(site)
    try:
        login = await client.start_login()
        assert (await client.http.get(login.callback)).status_code == 303
        again = Browser(site)
        try:
            second = await again.start_login()
            replay = await again.get(
                "/auth/slack/callback",
                params={"code": query_of(login.callback)["code"], "state": query_of(second.callback)["state"]},
            )
            assert replay.status_code == 502 and "invalid_code" in replay.text
            denied = await again.get("/auth/slack/callback", params={"error": "access_denied", "state": "x"})
            assert denied.status_code == 400 and "access_denied" in denied.text
        finally:
            await again.close()
    finally:
        await client.close()


async def test_the_callback_shows_slacks_error_code_but_not_a_sentence_from_a_link(site: BotHarness) -> None:
    """Anyone can send a link to the callback with any `error`: the dashboard's page must not say their words."""
    client = Browser(site)
    try:
        spoof = "Your session was revoked. Sign in again at https://evil.example/slack"
        page = await client.get("/auth/slack/callback", params={"error": spoof, "state": "x"})
        assert page.status_code == 400 and "Slack did not sign you in." in page.text
        assert "evil.example" not in page.text and "revoked" not in page.text
        code = await client.get("/auth/slack/callback", params={"error": "invalid_team", "state": "x"})
        assert code.status_code == 400 and "Slack did not sign you in (invalid_team)." in code.text
    finally:
        await client.close()


async def test_a_wrong_client_secret_is_refused_by_slack(site: BotHarness) -> None:
    site.settings.slack_oidc_client_secret = SecretStr("not-the-secret")
    client = Browser(site)
    try:
        login = await client.start_login()
        response = await client.http.get(login.callback)
        assert response.status_code == 502 and "bad_client_secret" in response.text
        assert site.fake.calls_to("openid.connect.token")[0].response["error"] == "bad_client_secret"
    finally:
        await client.close()


async def test_an_expired_session_sends_the_person_to_sign_in_again(site: BotHarness, clock: FakeClock) -> None:
    client = Browser(site)
    try:
        await client.sign_in()
        assert (await client.get("/")).status_code == 200
        clock.advance(timedelta(hours=11, minutes=59))
        assert (await client.get("/")).status_code == 200
        clock.advance(timedelta(minutes=2))
        expired = await client.get("/stats")
        assert expired.status_code == 303 and expired.headers["location"] == "/login?next=%2Fstats"
    finally:
        await client.close()


async def test_a_forged_session_cookie_is_not_a_session(site: BotHarness) -> None:
    client = Browser(site)
    try:
        await client.sign_in()
        value = client.http.cookies[SESSION_COOKIE]
        client.http.cookies.clear()
        client.http.cookies.set(SESSION_COOKIE, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
        assert (await client.get("/")).status_code == 303
    finally:
        await client.close()


async def test_next_is_kept_on_site(site: BotHarness) -> None:
    client = Browser(site)
    try:
        response = await client.sign_in(next_path="//evil.example/phish")
        assert response.headers["location"] == "/"
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("next_path", "location"),
    [
        ("/\t/evil.example/phish", "/%09/evil.example/phish"),
        ("/\n/evil.example/phish", "/%0A/evil.example/phish"),
        ("/\r\n/evil.example", "/%0D%0A/evil.example"),
        ("/?q=checkout down", "/?q=checkout%20down"),
    ],
)
async def test_next_with_a_tab_or_newline_is_kept_on_site(site: BotHarness, next_path: str, location: str) -> None:
    """Browsers drop tabs and newlines from a Location, so `/<tab>/evil.example` would become `//evil.example`."""
    client = Browser(site)
    try:
        response = await client.sign_in(next_path=next_path)
        assert response.headers["location"] == location
    finally:
        await client.close()


async def test_logout_needs_the_csrf_token_and_ends_the_session(site: BotHarness) -> None:
    client = Browser(site)
    try:
        await client.sign_in()
        token = await client.csrf()
        refused = await client.post("/logout")
        assert refused.status_code == 403
        assert (await client.get("/")).status_code == 200
        out = await client.post("/logout", {"csrf": token})
        assert out.status_code == 200 and "signed out" in out.text
        assert (await client.get("/")).status_code == 303
    finally:
        await client.close()


async def test_a_logout_posted_from_another_site_does_not_end_the_session(site: BotHarness) -> None:
    """SameSite=Lax keeps the session cookie off another site's form POST, but the browser still applies
    the answer's Set-Cookie: a deletion there would let any page sign people out of the dashboard."""
    client = Browser(site)
    try:
        await client.sign_in()
        async with httpx.AsyncClient(base_url=site.url) as cross_site:  # no cookie, as the browser sends it
            response = await cross_site.post("/logout", headers={"Origin": "https://evil.example"})
        assert not [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
        # A session cookie that is sent but no longer valid is still cleared.
        client.http.cookies.set(SESSION_COOKIE, "forged")
        stale = await client.post("/logout")
        assert stale.status_code == 200 and any(
            c.startswith(SESSION_COOKIE + '=""') for c in stale.headers.get_list("set-cookie")
        )
    finally:
        await client.close()


async def test_the_public_url_must_be_a_url(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, public_url="bot.example.com")
    with pytest.raises(ConfigError, match="PUBLIC_URL: must be the root of a host"):
        make_settings(
            fake=fake_slack, database_url=database_url, tmp_path=tmp_path, public_url="https://example.com/bot"
        )
    ok = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, public_url=" https://bot.example.com/ "
    )
    assert ok.public_url == "https://bot.example.com"
    with pytest.raises(ConfigError, match="SESSION_SECRET: must be at least 32"):
        make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, session_secret="short")
