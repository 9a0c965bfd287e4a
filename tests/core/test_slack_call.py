"""How `bot.slack.api.call` classifies what slack_sdk raises when Slack was reached but refused: the file
upload URL's HTTP status (a 413 will never pass, a 503 may), and a request the client will not send.

Why: slack_sdk raises both as a client error, which once read as "Slack unreachable" and was retried."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.exceptions import ChatError, is_transient
from bot.slack.api import call
from tests.fakes.slack_api import FakeSlack


@pytest.mark.parametrize(("status", "transient"), [(413, False), (400, False), (503, True), (429, True)])
async def test_the_upload_urls_status_is_the_code(fake_slack: FakeSlack, status: int, transient: bool) -> None:
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url)
    fake_slack.refuse_upload(status=status)  # refused before the completion: the channel is never reached
    with pytest.raises(ChatError) as info:
        await call("share", client.files_upload_v2(channel="C0GENERAL", filename="a.md", content=b"abc"))
    assert info.value.code == f"http_{status}" and is_transient(info.value) is transient
    assert str(info.value) == f"share: Slack's file upload answered HTTP {status}"


async def test_a_request_the_client_will_not_send_is_not_retried(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url)
    with pytest.raises(ChatError) as info:
        await call("share", client.files_upload_v2(channel="C1", filename="a.md"))  # neither file nor content
    assert info.value.code == "invalid_request" and not is_transient(info.value)
    assert fake_slack.calls == [], "nothing reached Slack"
