"""How `bot.slack.api.call` classifies what slack_sdk raises when Slack was reached but refused: the file
upload URL's HTTP status (a 413 will never pass, a 503 may), and a request the client will not send; and
what aiohttp raises through slack_sdk when the network failed on the way (a dropped connection).

Why: slack_sdk raises both refusals as a client error, which once read as "Slack unreachable" and was
retried; and aiohttp's network errors that are no OSError once escaped as bugs, not retried as blips."""

from __future__ import annotations

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from yarl import URL

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


@pytest.mark.parametrize("acted", [False, True], ids=["no-answer", "answer-cut"])
async def test_a_connection_slack_closes_is_unreachable(fake_slack: FakeSlack, acted: bool) -> None:
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url)
    # Without an answer slack_sdk sends the call once more by itself; a cut answer it does not.
    fake_slack.disconnect("chat.postMessage", count=1 if acted else 2, acted=acted)
    with pytest.raises(ChatError) as info:
        await call("post", client.chat_postMessage(channel="C0GENERAL", text="hello"))
    assert info.value.code == "unreachable" and is_transient(info.value)
    assert str(info.value).startswith("post: could not reach Slack")


async def _raise(exc: Exception) -> AsyncSlackResponse:
    raise exc


def _proxy_refusal(status: int) -> aiohttp.ClientHttpProxyError:
    url = URL("https://slack.com/api/chat.postMessage")
    request = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientHttpProxyError(request, (), status=status, message="from the proxy")


async def test_aiohttp_errors_are_network_failures_or_bugs() -> None:
    """What aiohttp raises outside slack_sdk's own errors: a network failure is `unreachable`, a proxy's
    refusal carries its HTTP status (503 passes in time, 407 "credentials needed" never), a bad URL is a bug."""
    cases: list[tuple[Exception, str]] = [
        (aiohttp.ServerDisconnectedError(), "unreachable"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "unreachable"),
        (_proxy_refusal(503), "http_503"),
    ]
    for exc, code in cases:
        with pytest.raises(ChatError) as info:
            await call("post", _raise(exc))
        assert info.value.code == code and is_transient(info.value), exc
        assert info.value.__cause__ is exc
    with pytest.raises(ChatError) as refused:
        await call("post", _raise(_proxy_refusal(407)))
    assert refused.value.code == "http_407" and not is_transient(refused.value)
    with pytest.raises(aiohttp.InvalidURL):  # the request itself is wrong: a bug, not a Slack failure
        await call("post", _raise(aiohttp.InvalidURL("slack.com/api")))
