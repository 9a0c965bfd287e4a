"""Pages: one Jinja2 environment (autoescaping on for every template), the security headers
every dashboard response carries, and the small filters templates use.

No page runs script and no page takes user HTML: the Content-Security-Policy allows only the
dashboard's own stylesheet (no inline script or style), no frames, forms only to the dashboard.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from bot.clock import elapsed, utc
from bot.followups.ports import issue_name
from bot.postmortem import text as fmt

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The user names of the page being rendered (Slack id -> name), read by the filters.
_NAMES: ContextVar[Mapping[str, str] | None] = ContextVar("dashboard_user_names", default=None)


def _user(value: str | None) -> str:
    return fmt.user_label(value, _NAMES.get()) if value else "—"


def _plain(value: Any) -> str:
    return fmt.slack_plain(None if value is None else str(value), _NAMES.get())


def _block(value: Any) -> Markup:
    return fmt.html_block(None if value is None else str(value), _NAMES.get())


def _dur(value: timedelta | None) -> str:
    return fmt.fmt_duration(value) if value is not None else "—"


def _iso(value: datetime | None) -> str:
    return utc(value).isoformat() if value is not None else ""


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        user=_user,
        users=lambda values: fmt.join_users(values, _NAMES.get()),
        plain=_plain,
        block=_block,
        dt=fmt.fmt_datetime,
        ts=fmt.fmt_timestamp,
        dur=_dur,
        offset=fmt.fmt_offset,
        iso=_iso,
        url=fmt.safe_url,
        issue_name=lambda item: issue_name(url=item.issue_url, key=item.issue_key),
    )
    env.globals["elapsed"] = elapsed  # durations between the times as shown, as the post-mortem counts them
    env.globals["css_url"] = f"/static/dashboard.css?v={css_version()}"
    return env


@functools.lru_cache(maxsize=1)
def css() -> bytes:
    return (STATIC / "dashboard.css").read_bytes()


def css_version() -> str:
    return hashlib.sha256(css()).hexdigest()[:12]


def _render(name: str, names: Mapping[str, str], context: dict[str, Any]) -> str:
    token = _NAMES.set(names)
    try:
        return environment().get_template(name).render(**context)
    finally:
        _NAMES.reset(token)


async def page(
    name: str,
    *,
    status: int = 200,
    names: Mapping[str, str] | None = None,
    **context: Any,
) -> web.Response:
    """Render a template into a response with the security headers. Pages stay small; what can be
    long (a timeline, a post-mortem) is built in a thread by the caller and passed in as Markup."""
    body = _render(name, names or {}, context)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8", headers=HEADERS)


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page (a reload does not resubmit)."""
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def secure(response: web.StreamResponse) -> web.StreamResponse:
    for key, value in HEADERS.items():
        response.headers.setdefault(key, value)
    return response


async def stylesheet(_: web.Request) -> web.Response:
    return web.Response(
        body=css(),
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
