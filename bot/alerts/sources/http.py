"""`POST /alerts/<name>` for each `alerts.sources` entry: check who sent it, read it, store it, answer.

Same promise as the Alertmanager endpoint: the database row exists before the 2xx, a storage
failure answers 503 (senders retry), a malformed body 400 with the reason. The token comes as
`Authorization: Bearer` or, for senders that cannot set headers (UptimeRobot), as `?token=`;
Sentry's deliveries are authenticated by `Sentry-Hook-Signature` when a client secret is set.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bot.alerts import limits
from bot.alerts.http import Handler, authorized, store_and_answer
from bot.alerts.limits import BodyTooLarge, LimitedReader
from bot.alerts.payloads import Notification, PayloadError, decode
from bot.alerts.rules import severity_of
from bot.alerts.sources import mapped, presets
from bot.alerts.sources.fields import Fields, Ignored, notification
from bot.config import AlertSource
from bot.deps import Deps

log = logging.getLogger(__name__)


def token_for(deps: Deps, source: AlertSource) -> str | None:
    if source.token_env:
        return os.environ.get(source.token_env, "").strip() or None
    token = deps.settings.alerts_token
    return token.get_secret_value() if token is not None else None


def sentry_signed(body: bytes, signature: str, secret: str) -> bool:
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.strip().lower().encode(), expected.encode())


def _token_ok(request: web.Request, token: str | None) -> bool:
    """The token in `Authorization` or `?token=`: checked before the body is read."""
    if token is None:
        return False
    header = request.headers.get("Authorization", "")
    if header and authorized(header, token):
        return True
    given = query_of(request).get("token", "")
    return bool(given) and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def _signature_problem(request: web.Request, body: bytes, *, token: str | None, secret: str) -> str | None:
    """Without a valid token, Sentry's signature over the body it sent; what is wrong (sent with the 401)."""
    if sentry_signed(body, request.headers.get("Sentry-Hook-Signature", ""), secret):
        return None
    if token is None:
        return "missing or wrong Sentry-Hook-Signature (check the client secret)"
    return "missing or wrong Sentry-Hook-Signature (check the client secret) and no valid token"


async def _read_body(request: web.Request) -> bytes:
    """Up to `MAX_SOURCE_BODY_BYTES`, whatever the server's own request limit (a Sentry event with its
    stack traces and breadcrumbs can pass it); more is `BodyTooLarge`, said up front when the length is."""
    limit = limits.MAX_SOURCE_BODY_BYTES
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(limit)
    reader = LimitedReader(request.content, limit=limit)
    chunks: list[bytes] = []
    while chunk := await reader.read():
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(deps: Deps, name: str, problem: str) -> web.Response:
    deps.metrics.alerts_rejected.labels(source=name, reason="auth").inc()
    log.warning("refused an alert on /alerts/%s: %s", name, problem)
    return web.json_response(
        {"status": "error", "error": problem}, status=401, headers={"WWW-Authenticate": 'Bearer realm="incident-bot"'}
    )


def query_of(request: web.Request) -> dict[str, str]:
    """The URL's variables. A sender that appends its own `?a=1&b=2` to a URL already holding `?token=…`
    makes `?token=…?a=1&b=2`: a bare `?` inside the query separates variables, never belongs to a token."""
    return dict(parse_qsl(request.rel_url.raw_query_string.replace("?", "&"), keep_blank_values=True))


def _data(source: AlertSource, request: web.Request, raw: bytes) -> dict[str, Any]:
    """The body; for UptimeRobot, which can send its variables as a query string instead, the URL's too
    (the body wins where both name one; an empty body is then fine)."""
    if source.preset != "uptimerobot":
        return _body(request, raw)
    query = {k: v for k, v in query_of(request).items() if k != "token"}
    if not raw.strip() and query:
        return query
    return {**query, **_body(request, raw)}


def _body(request: web.Request, raw: bytes) -> dict[str, Any]:
    """JSON; UptimeRobot can also send its variables as a form.

    UptimeRobot's JSON "POST value" is sent as `application/json` only when "Send as JSON" is ticked:
    a body that is a JSON object is read as JSON whatever the header says (a form never starts with `{`)."""
    if request.content_type == "application/x-www-form-urlencoded" and not raw.lstrip().startswith(b"{"):
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise PayloadError("the form body is not UTF-8") from None
    return decode(raw)


def read(source: AlertSource, data: dict[str, Any], headers: Mapping[str, str]) -> Fields | Ignored:
    if source.map is not None:
        return mapped.read(source.map, data, headers)
    assert source.preset is not None
    return presets.PRESETS[source.preset](data, headers)


def handler_for_source(deps: Deps, name: str, source: AlertSource) -> Handler:
    secret = os.environ.get(source.client_secret_env, "").strip() or None if source.client_secret_env else None
    # A secret named in bot.yml but missing from the environment closes the endpoint; it never opens it.
    unset = [env for env in (source.token_env, source.client_secret_env) if env and not os.environ.get(env, "").strip()]
    if unset:
        log.error("POST /alerts/%s refuses every delivery: %s not set", name, " and ".join(unset))

    async def receive(request: web.Request) -> web.Response:
        metrics = deps.metrics
        token = token_for(deps, source)
        if unset:
            return _refused(
                deps,
                name,
                f"the bot is missing {' and '.join(unset)} for this source; nothing is accepted until it is set",
            )
        # Nobody without the token makes the bot read a body; only Sentry's signature needs it.
        early = _token_ok(request, token) or (token is None and secret is None)
        if not early and secret is None:
            return _refused(deps, name, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>")
        try:
            raw = await _read_body(request)
        except BodyTooLarge as exc:
            metrics.alerts_rejected.labels(source=name, reason="too_large").inc()
            log.warning("refused an alert on /alerts/%s: %s", name, exc)
            return web.json_response({"status": "error", "error": str(exc)}, status=413)
        problem = None if early or secret is None else _signature_problem(request, raw, token=token, secret=secret)
        if problem is not None:
            return _refused(deps, name, problem)
        try:
            fields = read(source, _data(source, request, raw), request.headers)
            if isinstance(fields, Ignored):
                log.info("ignored a delivery on /alerts/%s: %s", name, fields.reason)
                return web.json_response({"status": "ignored", "reason": fields.reason})
            if fields.severity is None and source.severity is not None and severity_of(fields.labels) is None:
                fields = _with(fields, severity=source.severity.value)
            if fields.service is None and source.service is not None:
                fields = _with(fields, service=source.service)
            note = _once(source, notification(name, fields, now=deps.clock.now()), raw)
        except PayloadError as exc:
            metrics.alerts_rejected.labels(source=name, reason="malformed").inc()
            log.warning("refused a malformed alert on /alerts/%s: %s", name, exc)
            return web.json_response({"status": "error", "error": str(exc)}, status=400)
        return await store_and_answer(deps, note, source=name)

    return receive


def _once(source: AlertSource, note: Notification, raw: bytes) -> Notification:
    """Sentry signs the body only (`Sentry-Hook-Timestamp` is not signed): a captured delivery verifies
    whenever it is sent again. A firing one acts once, by its body (`Replayed`): sent again after its issue
    resolved it would open a new alert, and declare and page. Each real one differs (another event, the issue's
    new `lastSeen`). A resolve needs no claim: one that lands after the issue fired again is judged by its
    signed `lastSeen` (`ordering`), and the same resolve twice in a row changes nothing."""
    if source.preset != "sentry" or note.status != "firing":
        return note
    return replace(note, replay_key="sentry:" + hashlib.sha256(raw).hexdigest())


def _with(fields: Fields, **changes: Any) -> Fields:
    return replace(fields, **changes)


def setup(deps: Deps) -> None:
    routes = deps.http_routes
    for name, source in deps.settings.config.alerts.sources.items():
        routes.append(("POST", f"/alerts/{name}", handler_for_source(deps, name, source)))
