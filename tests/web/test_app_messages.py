"""Another app's message (a deploy bot's) on the dashboard and in the post-mortem: named, never a mention."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.harness import BotHarness
from tests.web.conftest import Browser, make_private


@pytest.fixture
async def carol(site: BotHarness) -> AsyncIterator[Browser]:
    client = Browser(site)
    await client.sign_in("U0CAROL")
    yield client
    await client.close()


def _deployed(channel: str) -> dict[str, object]:
    return {
        "type": "message",
        "subtype": "bot_message",
        "channel": channel,
        "bot_id": "B0DEPLOY",
        "username": "deploy-bot",
        "text": "api v42 deployed to production",
        "ts": "1790000000.000100",
        "channel_type": "group",
    }


async def test_a_deploy_bot_s_message_is_shown_by_its_name_and_kept_private(
    site: BotHarness, alice: Browser, carol: Browser
) -> None:
    incident = await site.declare("P1 Card data exposed")
    await make_private(site, incident.id or 0)
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    await site.event(_deployed(channel))

    page = await alice.get(f"/incidents/{incident.ref}")
    markdown = await alice.get(f"/incidents/{incident.ref}/postmortem?format=markdown")
    html = await alice.get(f"/incidents/{incident.ref}/postmortem")
    for response in (page, markdown, html):
        assert response.status_code == 200
        assert "api v42 deployed to production" in response.text and "deploy-bot" in response.text
        assert "B0DEPLOY" not in response.text and "<@" not in response.text
    assert '<span class="who">deploy-bot</span>' in page.text

    # Private as every other message of a private incident: to anyone else, it does not exist.
    for path in (f"/incidents/{incident.ref}", f"/incidents/{incident.ref}/postmortem?format=markdown"):
        hidden = await carol.get(path)
        assert hidden.status_code == 404 and "deployed" not in hidden.text
