"""The webhook endpoints: POST /alerts/alertmanager and POST /alerts/grafana.

Answer fast and never lose what was answered 2xx: check the token, parse, write the database,
answer; Slack work happens afterwards in a tracked task. A database failure answers 503, which
both Alertmanager and Grafana retry; a malformed body answers 400 with the reason (not retried).
A storm of any size a real sender produces is accepted: the body is parsed as it streams in, up to
`limits.MAX_ALERT_BODY_BYTES` (413 beyond), and alerts past the kept ones are counted (`limits`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.alerts import limits
from bot.alerts.flows import processor_of
from bot.alerts.limits import BodyTooLarge
from bot.alerts.payloads import Notification, PayloadError, parse
from bot.alerts.stream import read_notification
from bot.deps import Deps

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authorized(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, or Basic auth whose password is the token (any user name)."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return _same(value, token)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        _, _, password = decoded.partition(":")
        return _same(password, token)
    return False


def handler_for(deps: Deps, source: str) -> Handler:
    async def receive(request: web.Request) -> web.Response:
        metrics = deps.metrics
        token = deps.settings.alerts_token
        if token is not None and not authorized(request.headers.get("Authorization", ""), token.get_secret_value()):
            metrics.alerts_rejected.labels(source=source, reason="auth").inc()
            log.warning("refused an alert on /alerts/%s: missing or wrong token", source)
            return web.json_response(
                {"status": "error", "error": "missing or wrong token: send Authorization: Bearer <ALERTS_TOKEN>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="incident-bot"'},
            )
        try:
            if (request.content_length or 0) > limits.MAX_ALERT_BODY_BYTES:
                raise BodyTooLarge(limits.MAX_ALERT_BODY_BYTES)  # said up front: not read at all
            data, overflow = await read_notification(request.content, limit=limits.MAX_ALERT_BODY_BYTES)
            note = parse(source, data, overflow=overflow)
        except BodyTooLarge as exc:
            metrics.alerts_rejected.labels(source=source, reason="too_large").inc()
            log.warning("refused an alert on /alerts/%s: %s", source, exc)
            return web.json_response({"status": "error", "error": str(exc)}, status=413)
        except PayloadError as exc:
            metrics.alerts_rejected.labels(source=source, reason="malformed").inc()
            log.warning("refused a malformed alert on /alerts/%s: %s", source, exc)
            return web.json_response({"status": "error", "error": str(exc)}, status=400)
        return await store_and_answer(deps, note, source=source)

    return receive


async def store_and_answer(deps: Deps, note: Notification, *, source: str) -> web.Response:
    """Stored before the 2xx, so a sender's retry is the only copy until then; 503 asks it to send again."""
    try:
        result = await processor_of(deps).ingest(note)
    except Exception:
        deps.metrics.alerts_rejected.labels(source=source, reason="storage").inc()
        log.exception("could not store an alert from %s; answering 503 so it is sent again", source)
        return web.json_response({"status": "error", "error": "could not store the alert; send it again"}, status=503)
    processor_of(deps).spawn(result.group_id)
    incident = f"INC-{result.incident_id}" if result.incident_id else None
    return web.json_response(
        {
            "status": "accepted",
            "group": result.group_id,
            "revision": result.revision,
            "incident": "private" if incident and result.incident_private else incident,
        }
    )
