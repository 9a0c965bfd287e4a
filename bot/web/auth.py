"""Who is asking: the dashboard's settings, the session, CSRF, and the sign-in routes
(`GET /login`, `GET /auth/slack/callback`, `POST /logout`)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from bot.db import DATABASE_DOWN
from bot.deps import Deps
from bot.postmortem.data import SECTIONS
from bot.web import ended, render
from bot.web.oidc import CALLBACK_PATH, SignInRefused, SlackSignIn
from bot.web.session import SESSION_COOKIE, Cookies, Person, SignIn, same

log = logging.getLogger(__name__)


_UNSAFE_IN_LOCATION = re.compile(r"[\x00-\x20\x7f]")
_ERROR_CODE = re.compile(r"[a-z0-9_.]{1,64}")  # OAuth and Slack error codes: `access_denied`, `invalid_team`
SAFE_METHODS = ("GET", "HEAD")  # never write, so no CSRF token; everything else must carry one
PageHandler = Callable[[web.Request, Person], Awaitable[web.StreamResponse]]


class Dashboard:
    """What every dashboard handler shares: deps, the sign-in client and the cookies."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.slack = SlackSignIn(deps)
        self._cookies: tuple[tuple[str, bool], Cookies] | None = None

    def missing(self) -> list[str]:
        """The settings still to set; the dashboard is off until there are none."""
        return self.deps.settings.dashboard_missing()

    @property
    def cookies(self) -> Cookies:
        s = self.deps.settings
        secret = s.session_secret.get_secret_value() if s.session_secret else ""
        key = (secret, str(s.public_url or "").startswith("https://"))
        if self._cookies is None or self._cookies[0] != key:
            self._cookies = (key, Cookies(secret=key[0], clock=self.deps.clock, secure=key[1]))
        return self._cookies[1]

    async def person(self, request: web.Request) -> Person | None:
        """Who is signed in: a valid cookie whose session was not signed out (in any browser), of a
        person still in the workspace (a deactivated account's cookie stops working)."""
        person = self.cookies.person(request)
        if person is None or await ended.is_ended(self.deps.db, session_id=person.session_id):
            return None
        # Asked at most once a minute per person (the access check's cache); while Slack cannot say,
        # the session goes on: a Slack outage is when responders need the dashboard most.
        if not (await self.deps.incident_access.account(person=person.user_id)).in_workspace:
            log.info("dashboard: %s is no longer in the workspace; session refused", person.user_id)
            return None
        return person

    async def off(self) -> web.Response:
        return await render.page("off.html", status=503, missing=self.missing(), callback=CALLBACK_PATH)

    async def refused(
        self,
        message: str,
        *,
        status: int,
        retry: str = "/login",
        kept: list[tuple[str, str]] | None = None,
        title: str = "Not signed in",
    ) -> web.Response:
        return await render.page(
            "refused.html", status=status, message=message, retry=retry, person=None, kept=kept or [], title=title
        )


def signed_in(dash: Dashboard) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A page for signed-in people only: off without the settings, else to Slack and back."""

    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            if dash.missing():
                return await dash.off()
            try:
                person = await dash.person(request)
            except DATABASE_DOWN as exc:
                return await database_down(dash, request, exc)
            if person is None:
                if request.method not in SAFE_METHODS:
                    return await dash.refused(
                        "Your session has expired, so this was not saved: sign in and try again.",
                        status=401,
                        retry=f"/login?next={quote(request.path, safe='')}",
                        kept=written(await posted(request)),
                    )
                return await _to_sign_in(request)
            if request.method not in SAFE_METHODS:
                form = await posted(request)
                if not same(str(form.get("csrf") or ""), person.csrf):
                    return await dash.refused(
                        "This form is out of date or did not come from the dashboard: reload the page and try again.",
                        status=403,
                        retry=request.path,
                        kept=written(form),
                    )
            return await _answer(dash, handler, request, person)

        return run

    return wrap


async def _to_sign_in(request: web.Request) -> web.StreamResponse:
    """Off to Slack's sign-in, and back here after it. Asked from a dashboard page (its filter form, a
    link) after the session ended, through a page that goes on by itself rather than a redirect: that
    page's `form-action 'self'` also governs the redirects after a form's submission, so the browser
    would block the hop to Slack and the Filter button would silently do nothing."""
    target = f"/login?next={quote(request.path_qs, safe='')}"
    if request.headers.get("Sec-Fetch-Site") != "same-origin":
        return render.redirect(target)
    return await render.page("sign_in_again.html", status=401, person=None, target=target)


async def _answer(dash: Dashboard, handler: PageHandler, request: web.Request, person: Person) -> web.StreamResponse:
    """The page, or a 503 that says so while the database is briefly unreachable (not a bare 500)."""
    try:
        return render.secure(await handler(request, person))
    except DATABASE_DOWN as exc:
        return await database_down(dash, request, exc)


async def database_down(
    dash: Dashboard, request: web.Request, exc: Exception, *, not_done: str = "this was not saved"
) -> web.Response:
    log.warning("dashboard %s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__)
    writing = request.method not in SAFE_METHODS
    response = await dash.refused(
        "The database is not answering" + (f", so {not_done}" if writing else "") + ": try again in a minute.",
        status=503,
        retry=request.path if writing else request.path_qs,
        kept=written(await posted(request)) if writing else None,
        title="Try again shortly",
    )
    response.headers["Retry-After"] = "30"
    return response


def written(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> list[tuple[str, str]]:
    """What the person typed into a form that could not be saved, to hand back rather than lose."""
    return [
        (SECTIONS.get(key, key), value)
        for key, value in form.items()
        if isinstance(value, str) and value.strip() and key in SECTIONS
    ]


def safe_next(value: str | None) -> str:
    """Only a path on this site (never `//evil.example` or `https://…`). Spaces and control characters
    are percent-encoded: browsers drop tabs and newlines from a Location, so `/<tab>/evil.example`
    would arrive as `//evil.example` (and a raw newline cannot be sent as a header at all)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return _UNSAFE_IN_LOCATION.sub(lambda m: quote(m.group()), value)


async def posted(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The submitted form; an empty one for a body that is not a form (bytes that are not UTF-8, a
    broken multipart), which is then refused as a form without its CSRF token rather than a 500."""
    try:
        return await request.post()
    except ValueError as exc:  # UnicodeDecodeError included
        log.info("dashboard %s %s: unreadable form (%s)", request.method, request.path, type(exc).__name__)
        return MultiDictProxy(MultiDict())


async def form_of(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    return await posted(request)  # aiohttp caches it: the CSRF check read it already


def routes(dash: Dashboard) -> list[web.RouteDef]:
    async def login(request: web.Request) -> web.StreamResponse:
        if dash.missing():
            return await dash.off()
        response = render.redirect("/")
        sign_in = dash.cookies.begin_sign_in(request, response, next_path=safe_next(request.query.get("next")))
        try:
            team_id: str | None = (await dash.slack.workspace()).team_id
        except SignInRefused:
            team_id = None  # Slack asks which workspace; the callback still refuses the wrong one
        location = dash.slack.authorize_url(state=sign_in.state, nonce=sign_in.nonce, team_id=team_id)
        response.headers["Location"] = location
        return response

    async def callback(request: web.Request) -> web.StreamResponse:
        if dash.missing():
            return await dash.off()
        sign_in = dash.cookies.sign_in(request, state=request.query.get("state", ""))
        problem = _callback_problem(request, sign_in)
        if problem is not None or sign_in is None:
            message = problem or "Sign in again."
            return await _clear(dash, request, sign_in, await dash.refused(message, status=400))
        code = request.query.get("code", "")
        try:
            who = await dash.slack.identify(code=code, nonce=sign_in.nonce, now=dash.deps.clock.now())
        except SignInRefused as exc:
            log.info("dashboard sign-in refused: %s", exc)
            return await _clear(dash, request, sign_in, await dash.refused(str(exc), status=exc.status))
        # The same check every page makes (Dashboard.person): a session it would refuse at once would
        # send the browser back here for ever ("too many redirects") instead of saying why.
        if not (await dash.deps.incident_access.account(person=who.user_id)).in_workspace:
            log.info("dashboard sign-in refused: %s is deactivated or not in the workspace", who.user_id)
            message = (
                "Slack signed you in, but your account is deactivated or not a member of this workspace, "
                "so the dashboard cannot let you in."
            )
            return await _clear(dash, request, sign_in, await dash.refused(message, status=403))
        response = render.redirect(safe_next(sign_in.next))
        dash.cookies.start(response, user_id=who.user_id, name=who.name, team_id=who.team_id)
        dash.cookies.finish_sign_in(response, sign_in)
        log.info("dashboard sign-in: %s", who.user_id)
        return response

    async def logout(request: web.Request) -> web.StreamResponse:
        return await _logout(dash, request)

    return [
        web.get("/login", login),
        web.get(CALLBACK_PATH, callback),
        web.post("/logout", logout),
    ]


async def _logout(dash: Dashboard, request: web.Request) -> web.StreamResponse:
    if dash.missing():
        return await dash.off()
    person = dash.cookies.person(request)
    if person is not None:
        form = await posted(request)
        if not same(str(form.get("csrf") or ""), person.csrf):
            return await dash.refused("Reload the page and sign out again.", status=403, retry="/")
        try:
            now = dash.deps.clock.now()
            await ended.end(dash.deps.db, session_id=person.session_id, expires_at=person.expires_at, now=now)
        except DATABASE_DOWN as exc:
            # Half a sign-out (this browser only) would leave every copy of the cookie working, unseen.
            return await database_down(dash, request, exc, not_done="you are still signed in")
    response = await render.page("signed_out.html", person=None)
    if SESSION_COOKIE in request.cookies:
        # Only then: another site's form POST comes without the (SameSite=Lax) cookie, and the
        # browser would still apply a deletion, signing the person out from any page.
        dash.cookies.end(response)
    return response


def _callback_problem(request: web.Request, sign_in: SignIn | None) -> str | None:
    """Why Slack's redirect back cannot finish this browser's sign-in, if it cannot."""
    error = request.query.get("error")
    if error:
        # Anyone can make a link with any `error`: only a Slack error code is shown, never a sentence of theirs.
        return f"Slack did not sign you in ({error})." if _ERROR_CODE.fullmatch(error) else "Slack did not sign you in."
    if sign_in is None:
        return (
            "This sign-in took too long or began in another browser (none with its state is under way here): "
            "sign in again."
        )
    if not same(request.query.get("state", ""), sign_in.state):
        return "This sign-in does not match the one this browser started (state mismatch): sign in again."
    if not request.query.get("code", ""):
        return "Slack sent no code: sign in again."
    return None


async def _clear(
    dash: Dashboard, request: web.Request, sign_in: SignIn | None, response: web.StreamResponse
) -> web.StreamResponse:
    """The refused sign-in is over; another tab's, or one a made-up link did not name, goes on."""
    if sign_in is not None and same(request.query.get("state", ""), sign_in.state):
        dash.cookies.finish_sign_in(response, sign_in)
    return response
