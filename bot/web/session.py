"""Signed cookies: the session (who is signed in) and the short-lived sign-in state.

Signed with itsdangerous's timestamped serializer: the signature covers the time it was made, so
expiry is checked by the signature itself and a cookie cannot be kept alive by editing it. Its
clock is the bot's injected clock, so tests expire a session without waiting. The cookie holds
no secret beyond the CSRF token it is bound to; it is HttpOnly, SameSite=Lax, and Secure when the
dashboard is served over https.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from bot.clock import Clock

SESSION_COOKIE = "incident_bot_session"
LOGIN_COOKIE = "incident_bot_signin"
SESSION_MAX_AGE = timedelta(hours=12)
LOGIN_MAX_AGE = timedelta(minutes=10)  # from /login to Slack and back
# Sign-ins under way in one browser, one cookie each (named after its state), so that tabs signing in at
# once do not overwrite each other's; a browser that starts more is started afresh (Cookie header size).
MAX_PENDING_SIGN_INS = 5
_STATE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class Person:
    """Who is signed in: a Slack user of the bot's workspace."""

    user_id: str
    name: str
    team_id: str
    csrf: str
    session_id: str  # what a sign-out records, so every copy of this cookie ends with it (bot/web/models.py)
    expires_at: datetime


@dataclass(frozen=True)
class SignIn:
    """What /login remembers in the browser until Slack sends it back."""

    state: str
    nonce: str
    next: str


def _signer(clock: Clock) -> type[TimestampSigner]:
    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return ClockSigner


class Cookies:
    def __init__(self, *, secret: str, clock: Clock, secure: bool) -> None:
        signer = _signer(clock)
        self._session = URLSafeTimedSerializer(secret, salt="dashboard-session", signer=signer)
        self._login = URLSafeTimedSerializer(secret, salt="dashboard-signin", signer=signer)
        self.secure = secure

    # --- the session ------------------------------------------------------------------------

    def start(self, response: web.StreamResponse, *, user_id: str, name: str, team_id: str) -> None:
        data = {"u": user_id, "n": name, "t": team_id, "c": secrets.token_urlsafe(24), "i": secrets.token_urlsafe(24)}
        self._set(response, SESSION_COOKIE, str(self._session.dumps(data)), SESSION_MAX_AGE)

    def person(self, request: web.Request) -> Person | None:
        """Whom the cookie names, or None (no cookie, a forged or expired one, or one from before
        sessions had an id). Not whether the session was signed out since: see `auth.Dashboard.person`."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data, signed_at = self._session.loads(
                raw, max_age=int(SESSION_MAX_AGE.total_seconds()), return_timestamp=True
            )
            return Person(
                user_id=str(data["u"]),
                name=str(data["n"]),
                team_id=str(data["t"]),
                csrf=str(data["c"]),
                session_id=str(data["i"]),
                expires_at=signed_at.astimezone(UTC) + SESSION_MAX_AGE,
            )
        except (BadSignature, KeyError, TypeError):  # BadSignature includes SignatureExpired
            return None

    def end(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="Lax")

    # --- the sign-in in progress ------------------------------------------------------------

    def begin_sign_in(self, request: web.Request, response: web.StreamResponse, *, next_path: str) -> SignIn:
        sign_in = SignIn(state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24), next=next_path)
        under_way = [name for name in request.cookies if name.startswith(LOGIN_COOKIE)]
        if len(under_way) >= MAX_PENDING_SIGN_INS:
            for name in under_way:
                self._delete(response, name)
        value = self._login.dumps({"s": sign_in.state, "n": sign_in.nonce, "x": sign_in.next})
        self._set(response, _login_cookie(sign_in.state), str(value), LOGIN_MAX_AGE)
        return sign_in

    def sign_in(self, request: web.Request, *, state: str) -> SignIn | None:
        """The sign-in this browser began with `state`, if it did (and not too long ago)."""
        name = _login_cookie(state) if _STATE.fullmatch(state) else None
        raw = request.cookies.get(name) if name else None
        data = self._loads(self._login, raw, LOGIN_MAX_AGE) if raw else None
        if data is None:
            return None
        try:
            return SignIn(state=str(data["s"]), nonce=str(data["n"]), next=str(data["x"]))
        except KeyError:
            return None

    def finish_sign_in(self, response: web.StreamResponse, sign_in: SignIn) -> None:
        self._delete(response, _login_cookie(sign_in.state))

    # --- helpers ------------------------------------------------------------------------------

    def _set(self, response: web.StreamResponse, name: str, value: str, max_age: timedelta) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(max_age.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def _delete(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True, samesite="Lax")

    @staticmethod
    def _loads(serializer: URLSafeTimedSerializer, raw: str, max_age: timedelta) -> dict[str, Any] | None:
        try:
            data = serializer.loads(raw, max_age=int(max_age.total_seconds()))
        except BadSignature:  # includes SignatureExpired
            return None
        return data if isinstance(data, dict) else None


def _login_cookie(state: str) -> str:
    return f"{LOGIN_COOKIE}_{state[:16]}"


def same(a: str, b: str) -> bool:
    """Constant-time comparison for state and CSRF tokens."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())
