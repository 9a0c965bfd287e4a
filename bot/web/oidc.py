"""Sign in with Slack (OpenID Connect), the relying-party side.

Flow: /login sends the browser to Slack's authorize page with a `state` and a `nonce` that are
also kept in a short-lived signed cookie (session.py); Slack sends it back to the callback with a
`code`, which is exchanged at `openid.connect.token`; the person is read with
`openid.connect.userInfo`. Checks: the state matches the cookie's, the id_token's `nonce`,
audience and expiry are ours, its user and team agree with userInfo's, and the team is the bot's
own workspace (auth.test's `team_id`).

The id_token's signature is not verified: it comes straight from Slack's token endpoint over TLS,
which OpenID Connect Core (3.1.3.7) accepts in place of checking the signature; only its claims
are read.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.deps import Deps
from bot.exceptions import BotError

log = logging.getLogger(__name__)

ISSUER = "https://slack.com"
SCOPES = "openid profile email"
CALLBACK_PATH = "/auth/slack/callback"
SLACK_TIMEOUT = 5.0
WORKSPACE_RETRY = 60.0  # seconds before asking auth.test again after it failed
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"


class SignInRefused(BotError):
    """The sign-in cannot go on; `status` is the HTTP status the page answers with."""

    def __init__(self, message: str, *, status: int = 400, error: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error  # Slack's error code, when Slack answered with one


@dataclass(frozen=True)
class Workspace:
    team_id: str
    url: str  # e.g. https://acme.slack.com/


@dataclass(frozen=True)
class Identity:
    user_id: str
    team_id: str
    name: str
    email: str


class SlackSignIn:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._workspace: Workspace | None = None
        self._failed_at: float | None = None  # monotonic time auth.test last failed

    @property
    def _settings(self) -> Any:
        return self.deps.settings

    def redirect_uri(self) -> str:
        return f"{self._settings.public_url}{CALLBACK_PATH}"

    def authorize_url(self, *, state: str, nonce: str, team_id: str | None) -> str:
        params = {
            "response_type": "code",
            "scope": SCOPES,
            "client_id": self._settings.slack_oidc_client_id,
            "redirect_uri": self.redirect_uri(),
            "state": state,
            "nonce": nonce,
        }
        if team_id:
            params["team"] = team_id  # skips Slack's workspace picker
        return f"{self._settings.slack_authorize_url}?{urlencode(params)}"

    async def workspace(self) -> Workspace:
        """The bot's own workspace, from auth.test (asked once: a bot token belongs to one team)."""
        if self._workspace is None:
            # While Slack is down, pages that only want the channel link must not wait on it every time.
            if self._failed_at is not None and time.monotonic() - self._failed_at < WORKSPACE_RETRY:
                raise SignInRefused("Slack is not answering (auth.test); try again shortly.", status=503)
            try:
                body = await self._api("auth.test", headers={"Authorization": f"Bearer {self._bot_token()}"})
            except SignInRefused:
                self._failed_at = time.monotonic()
                raise
            team_id = str(body.get("team_id") or "")
            if not team_id:
                raise SignInRefused("Slack's auth.test gave no team id; try again shortly.", status=503)
            self._workspace = Workspace(team_id=team_id, url=str(body.get("url") or ""))
        return self._workspace

    async def identify(self, *, code: str, nonce: str, now: datetime) -> Identity:
        """Code → tokens → checked claims → the person, from the bot's own workspace only."""
        secret = self._settings.slack_oidc_client_secret
        tokens = await self._api(
            "openid.connect.token",
            data={
                "client_id": self._settings.slack_oidc_client_id,
                "client_secret": secret.get_secret_value() if secret else "",
                "code": code,
                "redirect_uri": self.redirect_uri(),
                "grant_type": "authorization_code",
            },
        )
        access_token = str(tokens.get("access_token") or "")
        claims = _claims(str(tokens.get("id_token") or ""))
        self._check_claims(claims, nonce=nonce, now=now)
        info = await self._api("openid.connect.userInfo", headers={"Authorization": f"Bearer {access_token}"})
        user_id = str(info.get(USER_CLAIM) or info.get("sub") or "")
        team_id = str(info.get(TEAM_CLAIM) or "")
        if not user_id or user_id != str(claims.get(USER_CLAIM) or claims.get("sub") or ""):
            raise SignInRefused("Slack's answers about who you are do not agree; sign in again.")
        if team_id != str(claims.get(TEAM_CLAIM) or ""):
            raise SignInRefused("Slack's answers about your workspace do not agree; sign in again.")
        ours = await self.workspace()
        if team_id != ours.team_id:
            name = info.get("https://slack.com/team_name") or team_id
            raise SignInRefused(
                f"You signed in to the Slack workspace {name}; this dashboard belongs to another workspace. "
                "Sign in again and pick the workspace the incident bot is installed in.",
                status=403,
            )
        name = str(info.get("name") or info.get("given_name") or user_id)
        return Identity(user_id=user_id, team_id=team_id, name=name, email=str(info.get("email") or ""))

    def _check_claims(self, claims: dict[str, Any], *, nonce: str, now: datetime) -> None:
        if claims.get("iss") != ISSUER:
            raise SignInRefused("The sign-in token was not issued by Slack.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._settings.slack_oidc_client_id not in audiences:
            raise SignInRefused("The sign-in token was issued to another app.")
        if claims.get("nonce") != nonce:
            raise SignInRefused("The sign-in token does not belong to this sign-in (nonce mismatch); sign in again.")
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or expires < now.timestamp():
            raise SignInRefused("The sign-in token has expired; sign in again.")

    def _bot_token(self) -> str:
        token = self._settings.slack_bot_token
        return token.get_secret_value() if token else ""

    async def _api(
        self, method: str, *, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        url = f"{self._settings.slack_api_url}{method}"
        try:
            response = await self.deps.http.post(url, data=data or {}, headers=headers or {}, timeout=SLACK_TIMEOUT)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Slack %s failed: %s", method, exc)
            raise SignInRefused(f"Slack could not be reached ({method}); try again shortly.", status=502) from exc
        if not isinstance(body, dict) or not body.get("ok"):
            error = body.get("error") if isinstance(body, dict) else "bad answer"
            log.warning("Slack %s refused: %s", method, error)
            raise SignInRefused(
                f"Slack refused the sign-in ({method}: {error}); sign in again.", status=502, error=str(error)
            )
        return body


def _claims(id_token: str) -> dict[str, Any]:
    """The JWT's payload (header.payload.signature, base64url without padding)."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise SignInRefused("Slack sent no usable id_token.", status=502)
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as exc:
        raise SignInRefused("Slack sent an id_token that does not decode.", status=502) from exc
    if not isinstance(claims, dict):
        raise SignInRefused("Slack sent an id_token that does not decode.", status=502)
    return claims
