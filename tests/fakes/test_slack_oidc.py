"""The fake's Sign in with Slack answers like Slack: the spec's errors for a wrong client, secret,
code or redirect URI, a code good once, and userInfo only for the user token it issued."""

from __future__ import annotations

import base64
import json

import httpx

from tests.fakes.slack_api import FakeSlack, load_spec

REDIRECT = "https://bot.example.com/auth/slack/callback"


async def _token(fake: FakeSlack, http: httpx.AsyncClient, **overrides: str) -> dict[str, object]:
    form = {
        "client_id": fake.oidc.client_id,
        "client_secret": fake.oidc.client_secret,
        "code": "",
        "redirect_uri": REDIRECT,
        "grant_type": "authorization_code",
        **overrides,
    }
    return dict((await http.post(f"{fake.url}openid.connect.token", data=form)).json())


def _code(fake: FakeSlack, nonce: str = "n-1") -> str:
    return fake.oidc.issue_code(
        "U0ALICE", client_id=fake.oidc.client_id, redirect_uri=REDIRECT, nonce=nonce, team_id=fake.team_id
    )


async def test_the_code_exchange_refuses_what_slack_refuses(fake_slack: FakeSlack) -> None:
    errors = set(load_spec("openid.connect.token")["errors"])  # type: ignore[index]
    async with httpx.AsyncClient() as http:
        cases = [
            ({"client_id": "9999.0000", "code": _code(fake_slack)}, "invalid_client_id"),
            ({"client_secret": "wrong", "code": _code(fake_slack)}, "bad_client_secret"),
            ({"code": "not-a-code"}, "invalid_code"),
            ({"code": _code(fake_slack), "redirect_uri": "https://evil.example/cb"}, "bad_redirect_uri"),
            ({"code": _code(fake_slack), "grant_type": "refresh_token"}, "invalid_grant_type"),
        ]
        for overrides, error in cases:
            body = await _token(fake_slack, http, **overrides)
            assert body == {"ok": False, "error": error}, overrides
            assert error in errors

        code = _code(fake_slack, nonce="n-42")
        body = await _token(fake_slack, http, code=code)
        assert body["ok"] is True and body["token_type"] == "Bearer" and str(body["access_token"]).startswith("xoxp-")
        payload = str(body["id_token"]).split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["nonce"] == "n-42" and claims["aud"] == fake_slack.oidc.client_id
        assert claims["iss"] == "https://slack.com" and claims["https://slack.com/team_id"] == fake_slack.team_id
        assert (await _token(fake_slack, http, code=code)) == {"ok": False, "error": "invalid_code"}  # used once

        info = f"{fake_slack.url}openid.connect.userInfo"
        me = (await http.post(info, headers={"Authorization": f"Bearer {body['access_token']}"})).json()
        assert me["ok"] is True and me["sub"] == me["https://slack.com/user_id"] == "U0ALICE"
        bot = (await http.post(info, headers={"Authorization": f"Bearer {fake_slack.bot_token}"})).json()
        assert bot == {"ok": False, "error": "not_allowed_token_type"}
        assert (await http.post(info)).json() == {"ok": False, "error": "not_authed"}


async def test_the_authorize_page_sends_the_browser_back_with_code_and_state(fake_slack: FakeSlack) -> None:
    fake_slack.oidc.redirect_urls = [REDIRECT]
    params = {
        "response_type": "code",
        "scope": "openid profile email",
        "client_id": fake_slack.oidc.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "nonce": "n-1",
    }
    async with httpx.AsyncClient(follow_redirects=False) as http:
        ok = await http.get(fake_slack.authorize_url, params=params)
        assert ok.status_code == 302 and ok.headers["location"].startswith(REDIRECT + "?code=")
        assert ok.headers["location"].endswith("&state=st-1")
        elsewhere = await http.get(fake_slack.authorize_url, params={**params, "redirect_uri": "https://evil.example/"})
        assert elsewhere.status_code == 400
        no_openid = await http.get(fake_slack.authorize_url, params={**params, "scope": "profile"})
        assert no_openid.status_code == 400
