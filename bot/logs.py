"""Logging: JSON lines by default (one event per line, ready for a log pipeline), text for humans.

Every line carries the id of the request it belongs to (a Slack request, an alert webhook, a
/health probe), set in a context variable by the server and the Bolt middleware, so one
`grep request_id=...` shows everything a request caused, including work done after the ack.
Secrets never reach the output: known token shapes are masked by pattern, and the exact values
of the configured secrets (registered at start-up) are masked wherever they appear.
"""

from __future__ import annotations

import json
import logging
import re
import secrets as _secrets
import sys
from collections.abc import Iterable
from contextvars import ContextVar, Token
from datetime import UTC, datetime

_SECRET = re.compile(
    r"(xox[a-z]-[A-Za-z0-9-]+"  # Slack bot/user/refresh tokens
    r"|xapp-[A-Za-z0-9-]+"  # Slack app-level tokens
    r"|(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"  # Authorization header values
    r"|(?i:(?:token|secret|password|api_key|apikey)=)[^&\s\"']+)"  # key=value in URLs and bodies
)
# The password in `scheme://user:password@host` (a health_url with basic auth: httpx logs every request's URL).
_URL_PASSWORD = re.compile(r"(://[^/\s@:]+:)[^/\s@]+@")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_REDACTED = "…redacted"

# Exact secret values (tokens from the environment); masked even when they match no pattern.
_known_secrets: set[str] = set()

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact strings in every log line (short values are ignored: they would mask words)."""
    for value in values:
        if value and len(value) >= 8:
            _known_secrets.add(value)


def redact(text: str) -> str:
    for value in _known_secrets:
        if value in text:
            text = text.replace(value, value[:4] + _REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + _REDACTED + "@", text)
    return _SECRET.sub(lambda m: m.group(0)[:5] + _REDACTED, text)


def new_request_id() -> str:
    return _secrets.token_hex(8)


def bind_request_id(value: str | None = None) -> Token[str | None]:
    """Set the current request id (a new one when not given); reset with `request_id.reset(token)`."""
    return request_id.set(value or new_request_id())


def current_request_id() -> str | None:
    return request_id.get()


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on each record, so formatters and handlers downstream see it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            rid = request_id.get()
            if rid is not None:
                record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) or value is None else redact(str(value))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic narrates every plugin and context at INFO; bot.migrations.run logs the one line that matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
