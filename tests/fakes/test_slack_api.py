"""The fake Slack Web API through slack_sdk's real client: auth, conversations, users, chat, pins,
reactions and Block Kit limits.

Why: the bot's tests trust these doubles; if the fake accepted what Slack rejects (or Bolt
could not parse our signed requests) every test built on them would pass for the wrong reason.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.conftest import api_error, button, section
from tests.fakes.slack_api import FakeSlack, Message, validate_blocks

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
    fake.add_user("U0MULTI", "multi", guest="multi")
    fake.add_user("U0SINGLE", "single", guest="single")
    flags = ("is_restricted", "is_ultra_restricted")
    for user, expected in (("U0ALICE", (False, False)), ("U0MULTI", (True, False)), ("U0SINGLE", (True, True))):
        info = (await client.users_info(user=user))["user"]
        assert tuple(info[flag] for flag in flags) == expected, user
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


async def test_replies_by_a_reply_s_own_ts_with_a_window_and_slack_s_errors(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    general = fake.add_channel("general", members=["UBOT"])
    parent = await client.chat_postMessage(channel=general, text="parent")
    reply = await client.chat_postMessage(channel=general, text="reply", thread_ts=parent["ts"])
    await client.chat_postMessage(channel=general, text="reply 2", thread_ts=parent["ts"])
    whole = await client.conversations_replies(channel=general, ts=reply["ts"])
    assert [m["text"] for m in whole["messages"]] == ["parent", "reply", "reply 2"]
    one = await client.conversations_replies(
        channel=general, ts=reply["ts"], oldest=reply["ts"], inclusive=True, limit=1
    )
    assert [m["text"] for m in one["messages"]] == ["parent", "reply"]
    alone = fake.user_says(general, "U0ALICE", "no replies")
    assert [m["text"] for m in (await client.conversations_replies(channel=general, ts=alone["ts"]))["messages"]] == [
        "no replies"
    ]
    assert await api_error(client.conversations_replies(channel=general, ts="1.000001")) == "thread_not_found"
    assert await api_error(client.api_call("conversations.replies", params={"channel": general})) == (
        "thread_not_found"
    )


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


async def test_blocks_too_long_in_total_are_refused(client: AsyncWebClient, fake: FakeSlack) -> None:
    """Slack's msg_blocks_too_long: each section within 3000 characters, over 11,000 in all (see chat.py);
    chat.update answers invalid_blocks, the code its spec lists for blocks."""
    general = fake.add_channel("general")
    four = [section("x" * 2750) for _ in range(4)]  # 11,000: accepted
    posted = await client.chat_postMessage(channel=general, text="t", blocks=four)
    five = [*four, section("y")]
    assert await api_error(client.chat_postMessage(channel=general, text="t", blocks=five)) == "msg_blocks_too_long"
    assert await api_error(client.chat_update(channel=general, ts=posted["ts"], text="t", blocks=five)) == (
        "invalid_blocks"
    )
    assert fake.messages(general)[0].blocks == four


# ------------------------------------------------------------------ message metadata


async def test_metadata_must_have_an_event_type_and_payload(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=[fake.bot_user_id])
    assert await api_error(client.chat_postMessage(channel=general, text="x", metadata={"page": 1})) == (
        "invalid_metadata_schema"
    )
    not_an_object: Any = "[1]"  # slack_sdk sends a string as it is
    assert await api_error(client.chat_postMessage(channel=general, text="x", metadata=not_an_object)) == (
        "invalid_metadata_format"
    )
    assert fake.messages(general) == []


async def test_history_returns_metadata_only_when_asked(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general", members=[fake.bot_user_id])
    marker = {"event_type": "incident_page", "event_payload": {"page": 7}}
    await client.chat_postMessage(channel=general, text="x", metadata=marker)
    assert "metadata" not in (await client.conversations_history(channel=general))["messages"][0]
    asked = await client.conversations_history(channel=general, include_all_metadata=True)
    assert asked["messages"][0]["metadata"] == marker


async def test_a_dms_history_needs_im_history(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.add_user("U0LEAD", "lead")
    dm = (await client.conversations_open(users="U0LEAD"))["channel"]["id"]
    await client.conversations_history(channel=dm)
    fake.oauth_scopes = [s for s in fake.oauth_scopes or [] if s != "im:history"]
    assert await api_error(client.conversations_history(channel=dm)) == "missing_scope"
