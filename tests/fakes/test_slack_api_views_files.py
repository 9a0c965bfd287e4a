"""The fake Slack Web API's views (modals, triggers, hashes) and file uploads, through slack_sdk's real
client.

Why: the bot's tests trust these doubles; if the fake accepted what Slack rejects (or Bolt
could not parse our signed requests) every test built on them would pass for the wrong reason.
"""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.conftest import api_error, section
from tests.fakes.slack_api import FakeSlack

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


async def test_the_upload_url_refuses_with_an_http_status_and_keeps_the_ticket_open(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    """What slack_sdk makes of it: SlackRequestError naming the status; nothing is completed or shared."""
    channel_id = (await client.conversations_create(name="inc-big"))["channel"]["id"]
    fake.refuse_upload(status=413)
    with pytest.raises(SlackRequestError, match=r"^Failed to upload a file \(status: 413, body: 413 Request Entity"):
        await client.files_upload_v2(channel=channel_id, content=b"abc", filename="big.md")
    [(file_id, status)] = fake.uploads
    assert status == 413 and fake.files[file_id].content is None and not fake.files[file_id].completed
    assert fake.calls_to("files.completeUploadExternal") == [] and fake.messages(channel_id) == []
    shared = await client.files_upload_v2(channel=channel_id, content=b"abc", filename="big.md")
    assert fake.uploads[-1] == (shared["file"]["id"], 200), "one refusal, then the upload URL takes the bytes"


async def test_multipart_upload_is_accepted(client: AsyncWebClient, fake: FakeSlack) -> None:
    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    form = aiohttp.FormData()
    form.add_field("filename", b"abc", filename="a.txt")
    async with aiohttp.ClientSession() as session, session.post(ticket["upload_url"], data=form) as resp:
        assert resp.status == 200
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}])
    assert fake.files[ticket["file_id"]].content == b"abc"


async def test_files_list_by_channel_user_and_time_newest_first(client: AsyncWebClient, fake: FakeSlack) -> None:
    here = (await client.conversations_create(name="files-here"))["channel"]["id"]
    there = (await client.conversations_create(name="files-there"))["channel"]["id"]
    first = (await client.files_upload_v2(channel=here, filename="a.md", content=b"a"))["files"][0]["id"]
    second = (await client.files_upload_v2(channel=here, filename="b.md", content=b"b"))["files"][0]["id"]
    await client.files_upload_v2(channel=there, filename="c.md", content=b"c")
    await client.files_getUploadURLExternal(filename="never-shared.md", length=1)  # a ticket is no file yet
    me = (await client.auth_test())["user_id"]

    listed = await client.files_list(channel=here, user=me)
    assert [f["id"] for f in listed["files"]] == [second, first]
    assert [f["name"] for f in listed["files"]] == ["b.md", "a.md"]
    assert listed["paging"] == {"count": 100, "total": 2, "page": 1, "pages": 1}
    paged = await client.files_list(channel=here, count=1, page=2)
    assert [f["id"] for f in paged["files"]] == [first] and paged["paging"]["pages"] == 2
    # Whole seconds, as Slack's `created`: the three uploads may fall in one second or cross into the next.
    created = fake.files[first].created
    newest = max(f.created for f in fake.files.values())
    assert len((await client.files_list(ts_from=str(created)))["files"]) == 3  # inclusive
    assert len((await client.files_list(ts_to=str(newest)))["files"]) == 3  # inclusive
    assert (await client.files_list(ts_from=str(newest + 1)))["files"] == []
    assert (await client.files_list(ts_to=str(created - 1)))["files"] == []
    assert (await client.files_list(channel=here, user="U0ALICE"))["files"] == []  # not hers
    assert await api_error(client.files_list(user="U0NOBODY")) == "user_not_found"
