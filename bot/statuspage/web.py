"""The public endpoints under /status-page: the cached snapshot, with ETag / Last-Modified and 304s.

No login and no database per reader: each handler answers from `StatusPage.snapshot` in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

from aiohttp import web

from bot.statuspage.runtime import StatusPage
from bot.statuspage.snapshot import BASE, Body, Snapshot

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The page loads only its own stylesheet: no script, no frames, no forms.
HTML_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def _not_modified(request: web.Request, etag: str, last_modified: str) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


def _takes_gzip(accept_encoding: str) -> bool:
    """gzip is listed and not refused: `gzip;q=0` (RFC 9110, 12.5.3) says no, which a substring test took for yes."""
    for part in accept_encoding.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding.lower() not in ("gzip", "x-gzip"):
            continue
        weights = [p.partition("=")[2] for p in params if p.lower().startswith("q=")]
        try:
            return not weights or float(weights[0]) > 0
        except ValueError:
            return False
    return False


def _serve(page: StatusPage, pick: Callable[[Snapshot], Body], *, max_age: int, extra: dict[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        snapshot = await page.current()
        body = pick(snapshot)
        gzipped = _takes_gzip(request.headers.get("Accept-Encoding", ""))
        etag = body.gzip_etag if gzipped else body.etag
        headers = {
            "ETag": etag,
            "Last-Modified": body.last_modified,
            "Cache-Control": f"public, max-age={max_age}",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            **extra,
        }
        if _not_modified(request, etag, body.last_modified):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = body.content_type
        if gzipped:
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=body.gzipped, headers=headers)
        return web.Response(body=body.data, headers=headers)

    return handler


def routes(page: StatusPage) -> list[tuple[str, str, Handler]]:
    html = _serve(page, lambda s: s.html, max_age=10, extra={"Content-Security-Policy": HTML_CSP})
    summary = _serve(page, lambda s: s.summary, max_age=10, extra={"Access-Control-Allow-Origin": "*"})
    gets = [
        (BASE, html),
        (BASE + "/", html),
        (BASE + "/api/v2/summary.json", summary),
        (BASE + "/history.atom", _serve(page, lambda s: s.atom, max_age=60, extra={})),
        (BASE + "/status.css", _serve(page, lambda s: s.css, max_age=3600, extra={})),
    ]
    # HEAD too: uptime monitors check a status page with it (aiohttp sends the headers, not the body).
    return [(method, path, handler) for path, handler in gets for method in ("GET", "HEAD")]
