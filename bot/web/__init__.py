"""The web dashboard: incidents, timelines, post-mortems, trends and on-call, behind Sign in with
Slack. A surface like the Slack layer: it parses, calls domain functions, renders.

    auth.py     settings check, session guard, CSRF, /login, /auth/slack/callback, /logout
    oidc.py     Sign in with Slack (OpenID Connect) against the Web API
    session.py  signed cookies (itsdangerous)
    pages.py    GET pages · writes.py POST forms · charts.py server-rendered SVG
    render.py   Jinja2 (autoescaped), security headers (CSP)
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.deps import Deps

log = logging.getLogger(__name__)


def add_routes(app: web.Application, deps: Deps) -> None:
    from bot.web import render
    from bot.web.auth import Dashboard, routes
    from bot.web.pages import Pages
    from bot.web.writes import Writes

    dash = Dashboard(deps)
    missing = dash.missing()
    if missing and len(missing) < 4:
        log.warning("web dashboard is off: %s not set", ", ".join(missing))
    elif not missing:
        url = str(deps.settings.public_url)
        log.info("web dashboard at %s (Sign in with Slack)", url)
        if not url.startswith("https://"):
            log.warning("PUBLIC_URL is not https: the dashboard's session cookie is sent without Secure")
    pages = Pages(dash)
    app.router.add_routes([*routes(dash), *pages.routes(), *Writes(pages).routes()])
    app.router.add_get("/static/dashboard.css", render.stylesheet)
