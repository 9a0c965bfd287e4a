"""The incident page's timeline says what the other surfaces say of the same lines."""

from __future__ import annotations

import html

from bot.timeline.shown import NO_TEXT, UNKNOWN_AUTHOR
from tests.harness import BotHarness
from tests.web.conftest import Browser


async def test_a_key_message_whose_text_could_not_be_read_says_so_with_its_link(
    site: BotHarness, alice: Browser
) -> None:
    """The same words as `/incident timeline` and the post-mortem (bot.timeline.shown), not an empty row."""
    incident = await site.declare("P1 Checkout is down")
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    ts = str(site.fake.user_says(channel, "U0BOB", "failover to db-2 done")["ts"])  # its event never came
    site.fake.fail("conversations.history", "internal_error")
    item = {"type": "message", "channel": channel, "ts": ts}
    await site.event(
        {"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": "U0BOB"}
    )
    link = f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    for query in ("", "?key=1"):
        page = await alice.get(f"/incidents/{incident.ref}{query}")
        (row,) = [line for line in page.text.splitlines() if link in line and "<li " in line]
        assert f'{html.escape(NO_TEXT)} <a href="{link}"' in row, row


async def test_a_key_message_whose_author_is_unknown_says_so_not_the_person_who_marked_it(
    site: BotHarness, alice: Browser
) -> None:
    """A 📌 event without `item_user`, and the history unreadable: the row named the pinner as the author."""
    incident = await site.declare("P1 Checkout is down")
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    ts = str(site.fake.user_says(channel, "U0BOB", "failover to db-2 done")["ts"])  # its event never came
    site.fake.fail("conversations.history", "internal_error")
    item = {"type": "message", "channel": channel, "ts": ts}
    await site.event({"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item})
    link = f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    page = await alice.get(f"/incidents/{incident.ref}")
    (row,) = [line for line in page.text.splitlines() if link in line and "<li " in line]
    assert f'<span class="who">{html.escape(UNKNOWN_AUTHOR)}</span>' in row, row
