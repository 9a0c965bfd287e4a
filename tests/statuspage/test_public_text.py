"""What `/incident publish` takes from Slack's markup: links as plain addresses, and no people or channels.

`/incident` is escaped (`should_escape: true` in the manifest), so Slack sends what the person typed as
`@bob` as `<@U0BOB|bob>`, a channel as `<#C…|name>` and a link as `<https://…|label>`.
"""

from __future__ import annotations

import pytest

from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import public


@pytest.mark.parametrize(
    ("mention", "shown"),
    [
        ("<@U0BOB|bob>", "@bob"),
        ("<@U0BOB>", "@U0BOB"),
        ("<#C0INC42|inc-42-db-primary>", "#inc-42-db-primary"),
        ("<!subteam^S0SRE|@sre-team>", "@sre-team"),
        ("<!here>", "@here"),
    ],
)
async def test_a_public_message_naming_a_person_or_channel_is_refused(
    sbot: BotHarness, statuspage: FakeStatuspage, mention: str, shown: str
) -> None:
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command(f"publish major Payments fail; {mention} is on it.", channel=channel)

    reply = sbot.last_reply()
    assert "Published" not in reply and shown in reply, reply
    summary, html, atom = await public(sbot)
    assert summary["incidents"] == []
    for output in (str(summary), html, atom):
        assert "U0BOB" not in output and "C0INC42" not in output and "S0SRE" not in output
    assert statuspage.calls == []


async def test_links_in_a_public_message_are_published_as_plain_addresses(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command(
        "publish major Card payments fail at <https://shop.acme.com|shop.acme.com>; "
        "<mailto:help@acme.com|help@acme.com> or <https://acme.com/faq|our FAQ>, "
        "updates at <https://status.acme.com>. A &lt;b&gt; stays &amp; so does 1 &lt; 2.",
        channel=channel,
    )

    said = (
        "Card payments fail at shop.acme.com; help@acme.com or our FAQ (https://acme.com/faq), "
        "updates at https://status.acme.com. A <b> stays & so does 1 < 2."
    )
    summary, html, atom = await public(sbot)
    [public_incident] = summary["incidents"]
    assert public_incident["incident_updates"][0]["body"] == said
    assert "&lt;https" not in html and "&lt;https" not in atom
    await sbot.settle()
    [create] = statuspage.calls
    assert create.body["incident"]["body"] == said


async def test_a_message_that_begins_with_an_impact_word_is_published_whole(sbot: BotHarness) -> None:
    incident = await sbot.declare("P2 service:api Payments slow")
    channel = incident.channel_id or ""
    await sbot.command("publish Critical systems are back; some payments are still slow.", channel=channel)

    summary, html, atom = await public(sbot)
    [public_incident] = summary["incidents"]
    assert public_incident["impact"] == "major"  # a P2's impact, not "critical" taken from the sentence
    assert public_incident["incident_updates"][0]["body"] == "Critical systems are back; some payments are still slow."
    assert summary["status"]["indicator"] == "major"


async def test_an_impact_word_followed_by_a_colon_names_the_impact(sbot: BotHarness) -> None:
    """`Major: we are…` is a label, not a sentence: the impact is major and the label is not published."""
    incident = await sbot.declare("P3 service:api Payments slow")
    channel = incident.channel_id or ""
    await sbot.command("publish Major: we are investigating failed payments.", channel=channel)

    summary, html, atom = await public(sbot)
    [public_incident] = summary["incidents"]
    assert public_incident["impact"] == "major"  # not the P3's minor
    assert public_incident["incident_updates"][0]["body"] == "we are investigating failed payments."
    assert "Major:" not in html and "Major:" not in atom


async def test_a_message_that_begins_with_none_is_published_whole(sbot: BotHarness) -> None:
    """`none` is not in the usage: `none of …` is a sentence, not a notice that every component is operational."""
    incident = await sbot.declare("P2 service:api Payments slow")
    channel = incident.channel_id or ""
    await sbot.command("publish none of the card data was exposed; payments are slow.", channel=channel)

    summary, _, _ = await public(sbot)
    [public_incident] = summary["incidents"]
    assert public_incident["impact"] == "major"  # the P2's, not "none"
    assert public_incident["incident_updates"][0]["body"] == "none of the card data was exposed; payments are slow."
    [checkout] = [c for c in summary["components"] if c["name"] == "Checkout API"]
    assert checkout["status"] == "partial_outage"
