"""`/slack/events` authenticates a request before anything parses it.

Unsigned or badly signed garbage (bad JSON, a `payload=` that is not JSON, a timestamp header like
`²`, bytes that are not UTF-8) gets 401 and exactly one WARNING line; a body Slack did sign but
that does not parse gets 400. Never a 500, never a traceback. A hypothesis fuzz drives raw bodies
and headers, signed and unsigned, through the real server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import slack_requests as req
from tests.conftest import USERS, make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET, BotHarness, start_bot
from tests.pg import create_database


class Lines(logging.Handler):
    """Every record at WARNING or above from the bot, Bolt (under `bot`) and the aiohttp server."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Live:
    runner: asyncio.Runner
    bot: BotHarness
    lines: Lines

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, list[logging.LogRecord]]:
        before = len(self.lines.records)

        async def send() -> httpx.Response:
            raw = {name.encode(): value.encode("utf-8") for name, value in headers.items()}  # as sent: any bytes
            response = await self.bot.http.post(f"{self.bot.url}/slack/events", content=body, headers=raw)
            await self.bot.settle()
            return response

        response = self.runner.run(send())
        return response.status_code, self.lines.records[before:]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str | None) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("auth")
    if postgres_admin_url is None:
        database_url = f"sqlite:///{tmp / 'bot.db'}"
    else:
        database_url = postgres_admin_url.rsplit("/", 1)[0] + "/" + create_database(postgres_admin_url)
    lines = Lines()
    loggers = [logging.getLogger("bot"), logging.getLogger("aiohttp"), logging.getLogger("slack_bolt")]
    for logger in loggers:
        logger.addHandler(lines)
    with asyncio.Runner() as runner:

        async def start() -> tuple[BotHarness, Any, FakeSlack]:
            fake = FakeSlack()
            await fake.start()
            for user_id, name in USERS.items():
                fake.add_user(user_id, name)
            fake.add_channel("general", channel_id="C0GENERAL", members=list(USERS))
            harness, stop = await start_bot(
                fake=fake, settings=make_settings(fake=fake, database_url=database_url, tmp_path=tmp)
            )
            return harness, stop, fake

        harness, stop, fake = runner.run(start())
        lines.records.clear()  # start-up notices are not what these tests count
        try:
            yield Live(runner=runner, bot=harness, lines=lines)
        finally:

            async def shutdown() -> None:
                await stop()
                await fake.stop()

            runner.run(shutdown())
            for logger in loggers:
                logger.removeHandler(lines)


def _headers(timestamp: str, signature: str, content_type: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature, "Content-Type": content_type}


FORM = "application/x-www-form-urlencoded"
UNSIGNED = [
    ("bad JSON", b'{"type": "event_callback", ', _headers(str(int(time.time())), "v0=" + "0" * 64, "application/json")),
    ("payload= not JSON", b"payload=%7Bnot-json", _headers(str(int(time.time())), "v0=" + "0" * 64, FORM)),
    ("superscript timestamp", b"payload=%7B%7D", _headers("²", "v0=" + "0" * 64, FORM)),
    ("arabic-indic timestamp", b"token=x", _headers("١٧٠٠٠٠٠٠٠٠", "v0=abc", FORM)),
    ("no headers at all", b"\xff\xfe\x00garbage", {}),
    ("not UTF-8", b"payload=\xff\xfe", _headers(str(int(time.time())), "v0=abc", FORM)),
    ("huge timestamp", b"{}", _headers("9" * 40, "v0=abc", "application/json")),
]


@pytest.mark.parametrize(("case", "body", "headers"), UNSIGNED, ids=[c[0] for c in UNSIGNED])
def test_unsigned_garbage_is_401_with_one_warning(live: Live, case: str, body: bytes, headers: dict[str, str]) -> None:
    status, records = live.post(body, headers)
    assert status == 401, case
    assert [(r.levelname, r.name) for r in records] == [("WARNING", "bot.server")], [r.getMessage() for r in records]
    assert records[0].exc_info is None
    assert "signature" in records[0].getMessage()


def _signed(body: bytes, content_type: str) -> dict[str, str]:
    return req.sign(body.decode("utf-8"), secret=SECRET, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", ', "application/json"),
        (b"payload=%7Bnot-json", FORM),
        (b"[1, 2, 3]", "application/json"),
        (b'payload="just a string"', FORM),
        (b'{"command": "/incident"}', "application/json"),
        (b"command=%2Fincident&text=list", FORM),
        (b'payload={"type": "block_actions", "actions": []}', FORM),
    ],
)
def test_signed_but_malformed_is_400(live: Live, body: bytes, content_type: str) -> None:
    status, records = live.post(body, _signed(body, content_type))
    assert status == 400
    assert [r.levelname for r in records] == ["WARNING"] and records[0].exc_info is None


def test_a_real_request_still_goes_through(live: Live) -> None:
    body, headers = req.slash_command(
        "/incident", "help", secret=SECRET, response_url=live.bot.fake.response_url("auth-ok")
    )
    status, records = live.post(body.encode(), headers)
    assert status == 200 and not records
    assert "/incident declare" in live.bot.last_reply()


# --- fuzz --------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
slack_shapes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["event_callback", "block_actions", "view_submission", "url_verification", "x"]),
        "event": json_value,
        "actions": json_value,
        "user": json_value,
        "view": json_value,
        "challenge": json_value,
        "command": st.sampled_from(["/incident", "/status", ""]),
        "team_id": json_value,
        "api_app_id": json_value,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    slack_shapes.map(lambda d: __import__("json").dumps(d).encode()),
    st.text(max_size=200).map(lambda t: b"payload=" + t.encode("utf-8")),
)
timestamps = st.one_of(
    st.just("now"),
    st.text(max_size=12),
    st.sampled_from(["²", "١٧٠٠", "-1", "0", "99999999999999999999", " 1700000000", "1e9"]),
)


@FUZZ
@given(
    body=bodies,
    timestamp=timestamps,
    content_type=st.sampled_from(["application/json", FORM, "text/plain", "text/plain; charset=bogus", ""]),
    signed=st.booleans(),
)
@example(body=b'{"type": "url_verification"}', timestamp="now", content_type="application/json", signed=True)
@example(body=b"payload=%7B%22type%22%3A%22block_actions%22%7D", timestamp="now", content_type=FORM, signed=True)
@example(body=b"payload=%7B%7D", timestamp="\u00b2", content_type=FORM, signed=False)
@example(body=b'{"event": null}', timestamp="now", content_type="application/json", signed=True)
@example(
    body=b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", timestamp="now", content_type="application/json", signed=True
)
@example(body=b"payload=%5B%5D", timestamp="now", content_type=FORM, signed=True)
@example(body=b'{"":"","command":"/incident"}', timestamp="now", content_type="application/json", signed=True)
@example(body=b"command=%2Fincident&text=list", timestamp="now", content_type=FORM, signed=True)
@example(body=b'payload={"type":"block_actions","actions":[1]}', timestamp="now", content_type=FORM, signed=True)
def test_no_raw_body_makes_a_5xx(live: Live, body: bytes, timestamp: str, content_type: str, signed: bool) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    text: str | None = None
    if signed:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            headers.update(req.sign(text, secret=SECRET, content_type=content_type or "text/plain"))
    elif timestamp:
        ts = str(int(time.time())) if timestamp == "now" else timestamp
        if ts and ts == ts.strip() and ts.isprintable():  # what an HTTP client can send at all
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
    status, records = live.post(body, headers)
    assert status < 500, (status, body, headers)
    assert not [r for r in records if r.name.startswith("aiohttp")], [r.getMessage() for r in records]
    if text is None:  # not signed: refused before anything reads it, in one line
        assert status == 401
        assert [(r.levelname, r.name) for r in records] == [("WARNING", "bot.server")]
