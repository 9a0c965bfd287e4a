"""The Slack fakes, exercised through slack_sdk's and slack_bolt's real code paths.

Why: the bot's tests trust these doubles; if the fake accepted what Slack rejects (or Bolt
could not parse our signed requests) every test built on them would pass for the wrong reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import jsonschema
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests import slack_requests
from tests.fakes.slack_api import FakeSlack, Message, validate_blocks

SECRET = "test-signing-secret"
EVENT_SCHEMA = Path(__file__).resolve().parents[3] / "shared/specs/slack-events/slack_common_event_wrapper_schema.json"
if not EVENT_SCHEMA.is_file():
    EVENT_SCHEMA = Path("/work/shared/specs/slack-events/slack_common_event_wrapper_schema.json")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user("U0ALICE", "alice", email="alice@example.com")
        server.add_user("U0BOB", "bob")
        server.add_user("U0GONE", "gone", deleted=True)
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.url)


async def api_error(coro: Any) -> str:
    """The Slack error code a call fails with."""
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response["error"]


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


# ------------------------------------------------------------------ auth, unknown methods


async def test_auth_test_reports_bot_identity(client: AsyncWebClient, fake: FakeSlack) -> None:
    resp = await client.auth_test()
    assert resp["user_id"] == fake.bot_user_id
    assert resp["bot_id"] == fake.bot_id
    assert resp["team_id"] == fake.team_id


async def test_invalid_token_is_invalid_auth(fake: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake.url)
    assert await api_error(bad.auth_test()) == "invalid_auth"
    assert await api_error(bad.chat_postMessage(channel="C1", text="x")) == "invalid_auth"


async def test_unimplemented_and_nonexistent_methods_are_visible(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.post(fake.url + "admin.apps.approve", headers=headers) as resp:
            assert (await resp.json())["error"] == "unknown_method"
            assert "does not implement admin.apps.approve" in resp.headers["X-Fake-Slack"]
        async with session.post(fake.url + "chat.postMessagez", headers=headers) as resp:
            assert (await resp.json())["error"] == "unknown_method"
            assert "not a Slack Web API method" in resp.headers["X-Fake-Slack"]


# ------------------------------------------------------------------ conversations


async def test_create_channel_and_name_rules(client: AsyncWebClient, fake: FakeSlack) -> None:
    resp = await client.conversations_create(name="inc-42-db-down", is_private=True)
    channel = fake.channels[resp["channel"]["id"]]
    assert channel.name == "inc-42-db-down" and channel.is_private
    assert fake.bot_user_id in channel.members
    assert resp["channel"]["is_member"] is True

    assert await api_error(client.conversations_create(name="inc-42-db-down")) == "name_taken"
    assert await api_error(client.conversations_create(name="Inc 42")) == "invalid_name_specials"
    assert await api_error(client.conversations_create(name="x" * 81)) == "invalid_name_maxlength"
    assert await api_error(client.conversations_create(name="---")) == "invalid_name_punctuation"
    assert await api_error(client.api_call("conversations.create")) == "invalid_name_required"


async def test_archived_channel_name_stays_taken(client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-1")
    await client.conversations_archive(channel=created["channel"]["id"])
    assert await api_error(client.conversations_create(name="inc-1")) == "name_taken"


async def test_invite_rules(client: AsyncWebClient, fake: FakeSlack) -> None:
    channel_id = (await client.conversations_create(name="inc-7"))["channel"]["id"]
    await client.conversations_invite(channel=channel_id, users=["U0ALICE", "U0BOB"])
    assert fake.channels[channel_id].members == {"UBOT", "U0ALICE", "U0BOB"}

    assert await api_error(client.conversations_invite(channel=channel_id, users="U0ALICE")) == ("already_in_channel")
    assert await api_error(client.conversations_invite(channel=channel_id, users="U0NOPE")) == ("user_not_found")
    assert await api_error(client.conversations_invite(channel=channel_id, users="UBOT")) == ("cant_invite_self")
    assert await api_error(client.conversations_invite(channel="C0MISSING", users="U0BOB")) == ("channel_not_found")


async def test_topic_purpose_info_members_join(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=["U0ALICE"])
    assert await api_error(client.conversations_setTopic(channel=general, topic="x")) == "not_in_channel"
    await client.conversations_join(channel=general)
    await client.conversations_setTopic(channel=general, topic="SEV1: db down")
    await client.conversations_setPurpose(channel=general, purpose="war room")
    info = await client.conversations_info(channel=general, include_num_members=True)
    assert info["channel"]["topic"]["value"] == "SEV1: db down"
    assert info["channel"]["purpose"]["value"] == "war room"
    assert info["channel"]["num_members"] == 2
    members = await client.conversations_members(channel=general)
    assert sorted(members["members"]) == ["U0ALICE", "UBOT"]
    assert await api_error(client.conversations_setTopic(channel=general, topic="x" * 251)) == "too_long"


async def test_private_channel_without_bot_does_not_exist_for_it(client: AsyncWebClient, fake: FakeSlack) -> None:
    secret_room = fake.add_channel("secret", private=True, members=["U0ALICE"])
    assert await api_error(client.chat_postMessage(channel=secret_room, text="hi")) == "channel_not_found"
    assert await api_error(client.conversations_info(channel=secret_room)) == "channel_not_found"


async def test_list_paginates(client: AsyncWebClient, fake: FakeSlack) -> None:
    for i in range(5):
        fake.add_channel(f"room-{i}")
    first = await client.conversations_list(limit=3)
    assert len(first["channels"]) == 3
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_list(limit=3, cursor=cursor)
    assert [c["name"] for c in second["channels"]] == ["room-3", "room-4"]
    assert second["response_metadata"]["next_cursor"] == ""


async def test_open_dm_and_dms(client: AsyncWebClient, fake: FakeSlack) -> None:
    opened = await client.conversations_open(users="U0ALICE")
    dm_id = opened["channel"]["id"]
    assert dm_id.startswith("D")
    assert (await client.conversations_open(users=["U0ALICE"]))["channel"]["id"] == dm_id
    await client.chat_postMessage(channel=dm_id, text="you are on call")
    assert [m.text for m in fake.dms("U0ALICE")] == ["you are on call"]
    assert await api_error(client.conversations_open(users="U0NOPE")) == "user_not_found"


async def test_users_and_usergroups(client: AsyncWebClient, fake: FakeSlack) -> None:
    assert (await client.users_info(user="U0ALICE"))["user"]["name"] == "alice"
    assert (await client.users_info(user="U0GONE"))["user"]["deleted"] is True
    assert await api_error(client.users_info(user="U0NOPE")) == "user_not_found"
    assert (await client.users_lookupByEmail(email="alice@example.com"))["user"]["id"] == "U0ALICE"
    fake.add_usergroup("S0ONCALL", "oncall", ["U0ALICE", "U0BOB"])
    resp = await client.usergroups_users_list(usergroup="S0ONCALL")
    assert resp["users"] == ["U0ALICE", "U0BOB"]
    assert await api_error(client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


# ------------------------------------------------------------------ chat, pins, reactions


async def test_post_update_pin_flow(client: AsyncWebClient, fake: FakeSlack) -> None:
    channel_id = (await client.conversations_create(name="inc-9"))["channel"]["id"]
    first = await client.chat_postMessage(channel="#inc-9", text="Incident declared")
    second = await client.chat_postMessage(channel=channel_id, text="second")
    assert first["channel"] == channel_id
    assert float(second["ts"]) > float(first["ts"])

    await client.chat_update(channel=channel_id, ts=first["ts"], text="Incident resolved")
    msg = fake.messages(channel_id)[0]
    assert msg.text == "Incident resolved" and msg.edited

    await client.pins_add(channel=channel_id, timestamp=first["ts"])
    assert fake.channels[channel_id].pins == [first["ts"]]
    assert await api_error(client.pins_add(channel=channel_id, timestamp=first["ts"])) == "already_pinned"
    assert await api_error(client.pins_add(channel=channel_id, timestamp="1.000001")) == "message_not_found"
    assert await api_error(client.pins_add(channel=channel_id)) == "no_item_specified"
    assert len((await client.pins_list(channel=channel_id))["items"]) == 1
    await client.pins_remove(channel=channel_id, timestamp=first["ts"])
    assert await api_error(client.pins_remove(channel=channel_id, timestamp=first["ts"])) == "not_pinned"

    await client.reactions_add(channel=channel_id, timestamp=first["ts"], name="white_check_mark")
    assert fake.messages(channel_id)[0].reactions == {"white_check_mark": ["UBOT"]}
    assert await api_error(
        client.reactions_add(channel=channel_id, timestamp=first["ts"], name="white_check_mark")
    ) == ("already_reacted")

    link = await client.chat_getPermalink(channel=channel_id, message_ts=first["ts"])
    assert link["permalink"] == f"https://fake.slack.com/archives/{channel_id}/p{first['ts'].replace('.', '')}"
    history = await client.conversations_history(channel=channel_id)
    assert [m["ts"] for m in history["messages"]] == [second["ts"], first["ts"]]


async def test_public_channel_post_needs_no_membership(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=["U0ALICE"])
    await client.chat_postMessage(channel=general, text="hello")
    assert [m.text for m in fake.messages(general)] == ["hello"]


async def test_missing_required_arg_is_rejected(client: AsyncWebClient, fake: FakeSlack) -> None:
    assert await api_error(client.api_call("chat.postMessage", json={"text": "hi"})) == "channel_not_found"
    call = fake.calls_to("chat.postMessage")[-1]
    assert call.response["response_metadata"]["messages"] == ["[ERROR] missing required field: channel"]
    assert await api_error(client.api_call("conversations.setTopic", params={"channel": "C1"})) == ("invalid_arguments")
    assert await api_error(client.api_call("files.getUploadURLExternal", params={"filename": "a"})) == (
        "missing_argument"
    )


async def test_form_and_query_encodings_are_normalised(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    channel_id = (await client.conversations_create(name="inc-enc"))["channel"]["id"]
    form = {"channel": general, "text": "t", "blocks": json.dumps([section("form")])}
    await client.api_call("chat.postMessage", data=form)
    await client.api_call("chat.postMessage", params={"channel": general, "text": "query"})
    assert fake.messages(general)[0].blocks == [section("form")]
    assert fake.messages(general)[1].text == "query"
    await client.api_call("conversations.invite", data={"channel": channel_id, "users": '["U0ALICE"]'})
    await client.api_call("conversations.invite", json={"channel": channel_id, "users": "U0BOB"})
    assert fake.channels[channel_id].members == {"UBOT", "U0ALICE", "U0BOB"}
    anonymous = AsyncWebClient(base_url=fake.url)
    assert await api_error(anonymous.auth_test()) == "not_authed"
    resp = await anonymous.api_call("chat.postMessage", data={"token": fake.bot_token, "channel": general, "text": "x"})
    assert resp["ok"]


async def test_threads_history_and_replies(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=["UBOT"])
    parent = await client.chat_postMessage(channel=general, text="parent")
    reply = await client.chat_postMessage(channel=general, text="reply", thread_ts=parent["ts"])
    await client.chat_postMessage(channel=general, text="reply 2", thread_ts=reply["ts"])
    history = await client.conversations_history(channel=general)
    assert [m["text"] for m in history["messages"]] == ["parent"]
    assert history["messages"][0]["reply_count"] == 2
    replies = await client.conversations_replies(channel=general, ts=parent["ts"])
    assert [m["text"] for m in replies["messages"]] == ["parent", "reply", "reply 2"]


async def test_no_text_and_blocks_only(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    assert await api_error(client.api_call("chat.postMessage", json={"channel": general})) == "no_text"
    with pytest.warns(UserWarning):  # slack_sdk warns client-side; Slack itself accepts
        await client.chat_postMessage(channel=general, blocks=[section("*hi*")])
    assert fake.messages(general)[0].blocks == [section("*hi*")]


async def test_update_rules(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    fake.channels[general].messages.append(
        Message(ts="1700000000.000100", channel=general, user="U0ALICE", text="human")
    )
    assert await api_error(client.chat_update(channel=general, ts="1700000000.000100", text="x")) == (
        "cant_update_message"
    )
    assert await api_error(client.chat_update(channel=general, ts="1.2", text="x")) == "message_not_found"


async def test_ephemeral_is_stored_but_not_in_history(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=["U0ALICE", "UBOT"])
    await client.chat_postEphemeral(channel=general, user="U0ALICE", text="only you")
    assert fake.messages(general)[0].ephemeral_to == "U0ALICE"
    assert (await client.conversations_history(channel=general))["messages"] == []
    assert await api_error(client.chat_postEphemeral(channel=general, user="U0BOB", text="x")) == (
        "user_not_in_channel"
    )


async def test_block_kit_limits(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    fifty_one = [section(f"line {i}") for i in range(51)]
    assert await api_error(client.chat_postMessage(channel=general, text="t", blocks=fifty_one)) == ("invalid_blocks")
    await client.chat_postMessage(channel=general, text="t", blocks=fifty_one[:50])

    dup_in_block = [{"type": "actions", "elements": [button("ack"), button("ack")]}]
    assert await api_error(client.chat_postMessage(channel=general, text="t", blocks=dup_in_block)) == (
        "invalid_blocks"
    )
    dup_block_id = [section("a", block_id="x"), section("b", block_id="x")]
    assert await api_error(client.chat_postMessage(channel=general, text="t", blocks=dup_block_id)) == (
        "invalid_blocks"
    )
    long_button = [{"type": "actions", "elements": [button("ack", text="x" * 76)]}]
    assert await api_error(client.chat_postMessage(channel=general, text="t", blocks=long_button)) == ("invalid_blocks")
    # Same action_id in two different blocks: Slack only requires uniqueness within a block.
    rows = [{"type": "actions", "elements": [button("ack")]}, {"type": "actions", "elements": [button("ack")]}]
    await client.chat_postMessage(channel=general, text="t", blocks=rows)


def test_validate_blocks_limits() -> None:
    assert validate_blocks([section("x" * 3000)]) == []
    assert validate_blocks([section("x" * 3001)])
    assert validate_blocks([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert validate_blocks([{"type": "actions", "elements": [button("a", value="v" * 2001)]}])
    assert validate_blocks([{"type": "actions", "elements": [button("a" * 256)]}])
    assert validate_blocks([section("x", block_id="b" * 256)])
    assert validate_blocks([section("x")] * 100, max_blocks=100) == []
    assert validate_blocks([section("")])  # Slack: text must be more than 0 characters


async def test_message_length_rules(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    posted = await client.chat_postMessage(channel=general, text="x" * 40_001)
    assert len(fake.messages(general)[0].text) == 40_000  # Slack truncates postMessage
    assert await api_error(client.chat_update(channel=general, ts=posted["ts"], text="y" * 4_001)) == ("msg_too_long")


# ------------------------------------------------------------------ faults and rate limits


async def test_throttle_then_success_with_retry_handler(fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    retrying = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.throttle("chat.postMessage", count=1, retry_after=0)
    await retrying.chat_postMessage(channel=general, text="after 429")
    statuses = [c.status for c in fake.calls_to("chat.postMessage")]
    assert statuses == [429, 200]
    assert [m.text for m in fake.messages(general)] == ["after 429"]


async def test_throttle_without_retry_surfaces_ratelimited(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.throttle("auth.test", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await client.auth_test()
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"


async def test_fail_and_server_error(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.fail("conversations.create", "restricted_action", count=2)
    assert await api_error(client.conversations_create(name="a")) == "restricted_action"
    assert await api_error(client.conversations_create(name="a")) == "restricted_action"
    await client.conversations_create(name="a")
    fake.server_error("auth.test", status=503)
    with pytest.raises(SlackApiError) as info:
        await client.auth_test()
    assert info.value.response.status_code == 503


async def test_tier2_sliding_window(client: AsyncWebClient, fake: FakeSlack) -> None:
    now = [1000.0]
    fake.clock = lambda: now[0]
    fake.rate_limit_tier2 = True
    for i in range(20):
        await client.conversations_create(name=f"inc-{i}")
    with pytest.raises(SlackApiError) as info:
        await client.conversations_create(name="inc-20")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "60"
    now[0] += 60.5
    await client.conversations_create(name="inc-20")


# ------------------------------------------------------------------ views


async def test_views_open_update_and_trigger_reuse(client: AsyncWebClient, fake: FakeSlack) -> None:
    modal = {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": "Declare incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    opened = await client.views_open(trigger_id="trig-1", view=modal)
    view_id = opened["view"]["id"]
    assert fake.views[0] == {"method": "views.open", "trigger_id": "trig-1", "view": modal, "view_id": view_id}
    assert await api_error(client.views_open(trigger_id="trig-1", view=modal)) == "exchanged_trigger_id"
    assert await api_error(client.api_call("views.open", json={"view": modal})) == "invalid_arguments"

    updated = await client.views_update(view_id=view_id, view=modal, hash=opened["view"]["hash"])
    assert updated["view"]["id"] == view_id
    assert await api_error(client.views_update(view_id=view_id, view=modal, hash="stale")) == "hash_conflict"
    assert await api_error(client.views_update(view_id="V0NOPE", view=modal)) == "not_found"

    too_many = {**modal, "blocks": [section(f"{i}") for i in range(101)]}
    assert await api_error(client.views_open(trigger_id="trig-9", view=too_many)) == "invalid_arguments"


# ------------------------------------------------------------------ files


async def test_files_upload_v2_three_steps(client: AsyncWebClient, fake: FakeSlack) -> None:
    channel_id = (await client.conversations_create(name="inc-pm"))["channel"]["id"]
    content = b"# Post-mortem\n\nroot cause: \xe2\x9c\x93 a full disk\n"
    resp = await client.files_upload_v2(
        channel=channel_id, content=content, filename="postmortem.md", title="Post-mortem"
    )
    file_id = resp["file"]["id"]
    stored = fake.files[file_id]
    assert stored.content == content and stored.length == len(content)
    assert stored.completed and stored.channel_id == channel_id and stored.title == "Post-mortem"
    assert [c.method for c in fake.calls][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert fake.calls_to("files.getUploadURLExternal")[0].args["length"] == len(content)
    assert fake.messages(channel_id)[-1].files == [file_id]


async def test_file_completion_errors(client: AsyncWebClient, fake: FakeSlack) -> None:
    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    files = [{"id": ticket["file_id"], "title": "a"}]
    assert await api_error(client.files_completeUploadExternal(files=files)) == "file_not_found"
    async with aiohttp.ClientSession() as session, session.post(ticket["upload_url"], data=b"abcd") as resp:
        assert resp.status == 200
    assert await api_error(client.files_completeUploadExternal(files=files)) == "file_update_failed"
    assert await api_error(client.files_completeUploadExternal(files=[{"id": "F0NOPE"}])) == "file_not_found"


async def test_multipart_upload_is_accepted(client: AsyncWebClient, fake: FakeSlack) -> None:
    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    form = aiohttp.FormData()
    form.add_field("filename", b"abc", filename="a.txt")
    async with aiohttp.ClientSession() as session, session.post(ticket["upload_url"], data=form) as resp:
        assert resp.status == 200
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}])
    assert fake.files[ticket["file_id"]].content == b"abc"


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


async def test_archive_refuses_what_slack_refuses(client: AsyncWebClient, fake: FakeSlack) -> None:
    """conversations.archive's errors (specs: already_archived, cant_archive_general, channel_not_found,
    not_in_channel, method_not_supported_for_channel_type), and posting into an archived channel."""
    channel_id = (await client.conversations_create(name="inc-9"))["channel"]["id"]
    await client.chat_postMessage(channel=channel_id, text="last words")
    assert (await client.conversations_archive(channel=channel_id))["ok"]
    assert fake.channels[channel_id].archived
    assert await api_error(client.conversations_archive(channel=channel_id)) == "already_archived"
    assert await api_error(client.chat_postMessage(channel=channel_id, text="too late")) == "is_archived"
    assert await api_error(client.conversations_archive(channel="C0NOPE")) == "channel_not_found"
    fake.add_channel("general", channel_id="C0GENERAL", members=["UBOT"])
    assert await api_error(client.conversations_archive(channel="C0GENERAL")) == "cant_archive_general"
    fake.add_channel("elsewhere", channel_id="C0ELSEWHERE", members=["U0ALICE"])
    assert await api_error(client.conversations_archive(channel="C0ELSEWHERE")) == "not_in_channel"
    assert not fake.channels["C0ELSEWHERE"].archived
