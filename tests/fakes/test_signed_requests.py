"""The signed requests tests send (tests/slack_requests.py), checked against Slack's published event
schema, slack_sdk's signature verifier and slack_bolt's real parsing.

Why: the bot's tests trust these doubles; if the fake accepted what Slack rejects (or Bolt
could not parse our signed requests) every test built on them would pass for the wrong reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests import slack_requests
from tests.fakes.slack_api import FakeSlack

SECRET = "test-signing-secret"
EVENT_SCHEMA = Path(__file__).resolve().parents[3] / "shared/specs/slack-events/slack_common_event_wrapper_schema.json"
if not EVENT_SCHEMA.is_file():
    EVENT_SCHEMA = Path("/work/shared/specs/slack-events/slack_common_event_wrapper_schema.json")


# ------------------------------------------------------------------ signed requests


def test_event_callback_matches_published_schema() -> None:
    body, headers = slack_requests.event_callback(
        {"type": "app_mention", "user": "U0ALICE", "text": "<@UBOT> hi", "ts": "1.1", "channel": "C1"},
        secret=SECRET,
        retry_num=1,
        retry_reason="http_timeout",
    )
    schema = json.loads(EVENT_SCHEMA.read_text())
    jsonschema.validate(json.loads(body), schema)
    assert headers["X-Slack-Retry-Num"] == "1" and headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_signature_matches_slack_sdk_and_old_requests_fail() -> None:
    body, headers = slack_requests.slash_command("/incident", "declare db down", secret=SECRET, response_url="u")
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    old_body, old_headers = slack_requests.slash_command(
        "/incident", "x", secret=SECRET, response_url="u", timestamp=int(time.time()) - 301
    )
    assert not SignatureVerifier(SECRET).is_valid_request(old_body, old_headers)
    fields = parse_qs(body)
    assert fields["command"] == ["/incident"] and fields["trigger_id"] == ["trig-1"]


async def test_bolt_parses_our_requests_end_to_end(fake: FakeSlack) -> None:
    """Dispatch each signed request through a real AsyncApp wired to the fake."""
    seen: dict[str, Any] = {}
    app = AsyncApp(
        signing_secret=SECRET,
        process_before_response=True,  # run listeners inside dispatch so asserts see their effects
        client=AsyncWebClient(token=fake.bot_token, base_url=fake.url),
    )

    @app.command("/incident")
    async def on_command(ack: Any, respond: Any, context: Any, command: dict[str, Any], client: Any) -> None:
        await ack()
        seen["command"] = (context.user_id, context.channel_id, context.team_id, command["text"])
        await client.views_open(
            trigger_id=command["trigger_id"],
            view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []},
        )
        await respond("declared")

    @app.action("ack")
    async def on_action(ack: Any, respond: Any, context: Any, action: dict[str, Any]) -> None:
        await ack()
        seen["action"] = (context.user_id, context.channel_id, action["value"])
        await respond(text="acked", replace_original=True)

    @app.view("declare")
    async def on_view(ack: Any, context: Any, view: dict[str, Any]) -> None:
        await ack()
        seen["view"] = (context.user_id, view["private_metadata"], view["state"]["values"])

    @app.event("app_mention")
    async def on_mention(context: Any, event: dict[str, Any]) -> None:
        seen["event"] = (context.user_id, context.channel_id, context.bot_user_id)

    general = fake.add_channel("general", channel_id="C0GENERAL", members=["U0ALICE"])
    bot_msg = await fake_post(fake, general, "Incident declared")

    async def dispatch(body: str, headers: dict[str, str]) -> int:
        resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers=dict(headers)))
        return resp.status

    body, headers = slack_requests.slash_command(
        "/incident", "db down", secret=SECRET, response_url=fake.response_url("cmd")
    )
    assert await dispatch(body, headers) == 200
    assert seen["command"] == ("U0ALICE", "C0GENERAL", "T0TEST", "db down")
    assert fake.views[0]["trigger_id"] == "trig-1"
    assert fake.responses[0]["key"] == "cmd" and fake.responses[0]["text"] == "declared"

    url = fake.response_url("act", channel_id=general, message_ts=bot_msg)
    body, headers = slack_requests.block_actions("ack", "inc-1", secret=SECRET, message_ts=bot_msg, response_url=url)
    assert await dispatch(body, headers) == 200
    assert seen["action"] == ("U0ALICE", "C0GENERAL", "inc-1")
    assert fake.messages(general)[0].text == "acked"  # replace_original applied

    values = {"title": {"value": {"type": "plain_text_input", "value": "db down"}}}
    body, headers = slack_requests.view_submission("declare", values, secret=SECRET, private_metadata="m")
    assert await dispatch(body, headers) == 200
    assert seen["view"] == ("U0ALICE", "m", values)

    body, headers = slack_requests.event_callback(
        {"type": "app_mention", "user": "U0ALICE", "text": "<@UBOT> status", "ts": "1.2", "channel": general},
        secret=SECRET,
    )
    assert await dispatch(body, headers) == 200
    assert seen["event"] == ("U0ALICE", "C0GENERAL", "UBOT")

    body, headers = slack_requests.url_verification("chal-123", secret=SECRET)
    resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers=dict(headers)))
    assert resp.status == 200 and "chal-123" in resp.body

    body, headers = slack_requests.slash_command(
        "/incident", "x", secret="wrong", response_url=fake.response_url("bad")
    )
    assert await dispatch(body, headers) == 401


async def fake_post(fake: FakeSlack, channel_id: str, text: str) -> str:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.url)
    return (await client.chat_postMessage(channel=channel_id, text=text))["ts"]
