"""Sign in with Slack for the fake Slack: the authorize page, `openid.connect.token` and
`openid.connect.userInfo`, held to the method specs (slack-web-api/methods/openid.connect.*.json).

Slack's behaviour kept here:
- the authorize page (`/openid/connect/authorize`) takes `response_type=code`, a known `client_id`, a
  `redirect_uri` among the app's redirect URLs and `openid` in `scope`; it sends the browser back to
  `redirect_uri?code=…&state=…` (the person is whoever `signed_in` says is logged in to Slack);
- a code is good once, for the client and redirect URI it was issued to; wrong ones give the spec's
  errors (`invalid_client_id`, `bad_client_secret`, `invalid_code`, `bad_redirect_uri`,
  `invalid_grant_type`);
- userInfo takes only the user token `openid.connect.token` gave (a bot token is refused).

The id_token carries Slack's claims (iss, sub, aud, exp, iat, auth_time, nonce, the
`https://slack.com/…` ids, name, email). It cannot be RS256-signed here (no crypto library in the
test environment): its signature part is a placeholder no verifier would accept. The bot reads the
claims without verifying the signature, which OpenID Connect allows for a token received directly
from the token endpoint over TLS.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from bot.clock import Clock, SystemClock

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

ISSUER = "https://slack.com"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    user_id: str
    team_id: str
    nonce: str
    used: bool = False


@dataclass
class OpenIDConnect:
    fake: FakeSlack
    client_id: str = "1111.2222"
    client_secret: str = "fake-oidc-client-secret"
    redirect_urls: list[str] = field(default_factory=list)  # empty: any http(s) URL (tests set it)
    signed_in: str | None = "U0ALICE"  # who the browser is logged in to Slack as
    team_id: str | None = None  # that person's workspace; None: the fake's own team
    team_name: str = "Fake Team"
    token_lifetime: int = 3600  # seconds from issue to `exp` (negative: the token is born expired)
    # Whose time the id_token's iat/exp are stamped with: a test gives the bot's clock, so that what the
    # bot compares `exp` with is the same time the fake issued it at.
    clock: Clock = field(default_factory=SystemClock)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # user token -> (user, team)

    # --- the browser side --------------------------------------------------------------------

    def issue_code(self, user_id: str, *, client_id: str, redirect_uri: str, nonce: str, team_id: str) -> str:
        code = f"{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"
        self.grants[code] = Grant(client_id, redirect_uri, user_id, team_id, nonce)
        return code

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        problem = None
        if q.get("response_type") != "code":
            problem = "response_type must be code"
        elif q.get("client_id") != self.client_id:
            problem = "invalid client_id"
        elif "openid" not in q.get("scope", "").split():
            problem = "scope must include openid"
        elif not self._redirect_ok(q.get("redirect_uri", "")):
            problem = "redirect_uri did not match any configured URIs"
        elif self.signed_in is None:
            problem = "nobody is signed in to Slack in this browser"
        if problem:
            return web.Response(status=400, text=f"Slack sign-in error: {problem}", content_type="text/plain")
        team = self.team_id or self.fake.team_id
        code = self.issue_code(
            str(self.signed_in),
            client_id=self.client_id,
            redirect_uri=q["redirect_uri"],
            nonce=q.get("nonce", ""),
            team_id=team,
        )
        back = {"code": code, **({"state": q["state"]} if "state" in q else {})}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        raise web.HTTPFound(f"{q['redirect_uri']}{sep}{urlencode(back)}")

    def _redirect_ok(self, uri: str) -> bool:
        if self.redirect_urls:
            return any(uri.startswith(url) for url in self.redirect_urls)
        return uri.startswith(("http://", "https://"))

    # --- Web API methods ---------------------------------------------------------------------

    def token(self, args: dict[str, Any]) -> dict[str, Any]:
        from tests.fakes.slack_api import SlackError

        if args.get("client_id") != self.client_id:
            raise SlackError("invalid_client_id")
        if args.get("client_secret") != self.client_secret:
            raise SlackError("bad_client_secret")
        if args.get("grant_type", "authorization_code") != "authorization_code":
            raise SlackError("invalid_grant_type")
        grant = self.grants.get(str(args.get("code") or ""))
        if grant is None or grant.used or grant.client_id != args["client_id"]:
            raise SlackError("invalid_code")
        if grant.redirect_uri and args.get("redirect_uri") != grant.redirect_uri:
            raise SlackError("bad_redirect_uri")
        grant.used = True
        access = f"xoxp-{secrets.token_hex(12)}"
        self.tokens[access] = (grant.user_id, grant.team_id)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "id_token": self._id_token(grant),
        }

    def user_info(self, token: str | None) -> dict[str, Any]:
        from tests.fakes.slack_api import SlackError

        if not token:
            raise SlackError("not_authed")
        if token == self.fake.bot_token:
            raise SlackError("not_allowed_token_type")
        if token not in self.tokens:
            raise SlackError("invalid_auth")
        user_id, team_id = self.tokens[token]
        return self._profile(user_id, team_id)

    def _profile(self, user_id: str, team_id: str) -> dict[str, Any]:
        user = self.fake.users.get(user_id)
        name = (user.real_name or user.name) if user else user_id
        email = user.email if user and user.email else f"{user_id.lower()}@example.com"
        return {
            "sub": user_id,
            "https://slack.com/user_id": user_id,
            "https://slack.com/team_id": team_id,
            "email": email,
            "email_verified": True,
            "name": name,
            "https://slack.com/team_name": self.team_name if team_id == self.fake.team_id else "Other Team",
        }

    def _id_token(self, grant: Grant) -> str:
        now = int(self.clock.now().timestamp())
        claims = {
            "iss": ISSUER,
            "aud": grant.client_id,
            "exp": now + self.token_lifetime,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            **self._profile(grant.user_id, grant.team_id),
        }

        def part(value: dict[str, Any] | bytes) -> str:
            raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return ".".join((part({"typ": "JWT", "alg": "RS256", "kid": "fake"}), part(claims), part(b"unsigned-fake")))
