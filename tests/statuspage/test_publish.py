"""Publish, update, resolve through the real app: the public JSON, HTML and feed after each, and Statuspage."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from xml.etree import ElementTree

from sqlmodel import col, select

from bot.incidents.models import Incident
from bot.statuspage.models import PublicUpdate
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness, until
from tests.statuspage.conftest import page_of, public

SECRETS = ("db-primary-3 ran out of disk", "rotate the hunter2 password", "Bob's migration dropped an index")


async def _declare(bot: BotHarness, text: str = "P1 service:api Payments fail on db-primary-3") -> Incident:
    incident = await bot.declare(text)
    assert incident.channel_id, bot.replies()
    return incident


ATOM = "{http://www.w3.org/2005/Atom}"


def _assert_statuspage_shape(summary: dict[str, Any]) -> None:
    """The keys Atlassian Statuspage's public summary.json has, so tools that read it read ours."""
    assert set(summary) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert {"id", "name", "url", "time_zone", "updated_at"} <= set(summary["page"])
    for component in summary["components"]:
        assert {"id", "name", "status", "position", "description", "group_id", "only_show_if_degraded"} <= set(
            component
        )
    for incident in summary["incidents"]:
        keys = {"id", "name", "status", "impact", "shortlink", "created_at", "updated_at", "started_at"}
        assert keys | {"monitoring_at", "resolved_at", "page_id", "incident_updates"} <= set(incident)
        for update in incident["incident_updates"]:
            keys = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at"}
            assert keys | {"affected_components"} <= set(update)
            assert update["incident_id"] == incident["id"]


def _assert_nothing_internal(*outputs: str, incident: Incident) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output
        assert incident.title not in output  # the internal title is not the public name
        assert "U0ALICE" not in output and "INC-" not in output


def _assert_first_publish_is_public(summary: dict[str, Any], html: str, atom: str) -> None:
    """After `publish major ...`: the incident, its first update and the component's outage on every output."""
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    [public_incident] = summary["incidents"]
    assert public_incident["name"] == "Partial outage: Checkout API"
    assert public_incident["status"] == "investigating" and public_incident["impact"] == "major"
    assert [u["body"] for u in public_incident["incident_updates"]] == ["We are investigating failed payments."]
    [affected] = public_incident["incident_updates"][0]["affected_components"]
    assert affected["name"] == "Checkout API" and affected["new_status"] == "partial_outage"
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "partial_outage"
    assert "We are investigating failed payments." in html and "Ongoing incidents" in html
    assert "We are investigating failed payments." in atom and "[Investigating]" in atom
    _assert_statuspage_shape(summary)
    assert len(ElementTree.fromstring(atom).findall(f"{ATOM}entry")) == 1


async def _assert_three_publishes_recorded(bot: BotHarness, incident: Incident, channel: str) -> None:
    """Each publish is a PublicUpdate row, a timeline entry and a note in the incident channel."""
    async with bot.deps.db.session() as session:
        rows = (await session.exec(select(PublicUpdate).order_by(col(PublicUpdate.id)))).all()
    assert [(r.status, r.published_by) for r in rows] == [
        ("investigating", "U0ALICE"),
        ("identified", "U0ALICE"),
        ("resolved", "U0ALICE"),
    ]
    publishes = [e for e in await bot.timeline(incident.id or 0) if e.kind == "public_update"]
    assert [(e.actor, e.data["status"]) for e in publishes] == [
        ("U0ALICE", "investigating"),
        ("U0ALICE", "identified"),
        ("U0ALICE", "resolved"),
    ]
    told = [m.text for m in bot.fake.messages(channel) if "published to the status page" in m.text]
    assert len(told) == 3


def _assert_statuspage_created_then_updated(statuspage: FakeStatuspage) -> None:
    """Statuspage: created once, then updated, in order, a second or more apart, all accepted."""
    assert statuspage.refused == []
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in statuspage.calls] == [
        ("POST", "incidents"),
        ("PATCH", "inc0001"),
        ("PATCH", "inc0001"),
    ]
    bodies = [c.body["incident"] for c in statuspage.calls]
    assert [(b["status"], b["impact_override"], b["components"]) for b in bodies] == [
        ("investigating", "major", {"cmp_api": "partial_outage"}),
        ("identified", "major", {"cmp_api": "partial_outage"}),
        ("resolved", "major", {"cmp_api": "operational"}),
    ]
    assert bodies[2]["body"] == "The cause is found and a fix is rolling out."
    gaps = [b.at - a.at for a, b in zip(statuspage.calls, statuspage.calls[1:], strict=False)]
    assert all(gap >= 0.98 for gap in gaps), gaps
    assert statuspage.incidents["inc0001"].status == "resolved"
    assert statuspage.components["cmp_api"] == "operational"


async def test_publish_update_resolve_shows_on_every_public_output_and_on_statuspage_in_order(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    incident = await _declare(bot)
    channel = incident.channel_id
    assert channel
    await bot.command(f"note {SECRETS[0]}", channel=channel)
    summary, html, atom = await public(bot)
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "none"
    assert {c["name"]: c["status"] for c in summary["components"]} == {
        "Checkout API": "operational",
        "Website": "operational",
    }

    # 1. The first publish makes the incident public (impact given, components from its service).
    await bot.command("publish major We are investigating failed payments.", channel=channel)
    assert "Published to the status page" in bot.last_reply(), bot.replies()
    _assert_first_publish_is_public(*await public(bot))

    # 2. Internal status change and note; then a second publish carries the new status only.
    await bot.command(f"update identified {SECRETS[1]}", channel=channel)
    await bot.command("publish The cause is found and a fix is rolling out.", channel=channel)
    summary, html, atom = await public(bot)
    [public_incident] = summary["incidents"]
    assert public_incident["status"] == "identified" and public_incident["impact"] == "major"
    assert [u["body"] for u in public_incident["incident_updates"]] == [
        "The cause is found and a fix is rolling out.",
        "We are investigating failed payments.",
    ]
    assert [u["status"] for u in public_incident["incident_updates"]] == ["identified", "investigating"]
    assert html.index("The cause is found") < html.index("We are investigating")  # newest first
    assert atom.count("<entry>") == 2

    # 3. Resolving publishes "resolved" with the last public message, never the resolution summary.
    await bot.command(f"resolve {SECRETS[2]}", channel=channel)
    summary, html, atom = await public(bot)
    assert summary["incidents"] == []  # summary.json lists unresolved incidents, as Statuspage's does
    assert summary["status"]["indicator"] == "none"
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "operational"
    assert "Past incidents" in html and "Resolved" in html and "Partial outage: Checkout API" in html
    assert "[Resolved]" in atom and len(ElementTree.fromstring(atom).findall(f"{ATOM}entry")) == 3
    _assert_nothing_internal(json.dumps(summary), html, atom, incident=incident)

    await _assert_three_publishes_recorded(bot, incident, channel)
    _assert_statuspage_created_then_updated(statuspage)


async def test_a_private_incident_is_refused_and_never_appears(sbot: BotHarness) -> None:
    bot = sbot
    public_one = await _declare(bot, "P2 service:web Slow pages")
    await bot.command("publish minor Pages load slowly for some visitors.", channel=public_one.channel_id or "")
    secret = await _declare(bot, "P1 service:api Credentials leaked")
    # Published while it was public, then made private (e.g. it turned out to be a breach).
    await bot.command("publish critical Checkout is unavailable.", channel=secret.channel_id or "")
    async with bot.deps.db.session() as session:
        row = await session.get(Incident, secret.id)
        assert row is not None
        row.private = True
        session.add(row)
        await session.commit()
    await bot.command("publish critical Still unavailable.", channel=secret.channel_id or "")
    assert "private incidents never go on the status page" in bot.last_reply()
    await page_of(bot).refresh()
    summary, html, atom = await public(bot)
    assert [i["name"] for i in summary["incidents"]] == ["Degraded performance: Website"]
    for output in (json.dumps(summary), html, atom):
        assert "Checkout is unavailable" not in output and "Still unavailable" not in output
        assert "Major outage: Checkout API" not in output
    assert "Pages load slowly" in html


async def test_public_ids_do_not_count_the_incidents_that_never_reached_the_page(sbot: BotHarness) -> None:
    def hashed(kind: str, number: int) -> str:  # what anyone can compute for small numbers
        return hashlib.sha256(f"{kind}:{number}".encode()).hexdigest()[:12]

    for title in ("Root token leaked", "Payroll export mailed out", "HR records exposed"):
        assert (await _declare(sbot, f"private P1 {title}")).private
    incident = await _declare(sbot, "P1 service:api Payments fail")
    await sbot.command("publish major We are investigating failed payments.", channel=incident.channel_id or "")
    summary, _, _ = await public(sbot)
    [shown] = summary["incidents"]
    async with sbot.deps.db.session() as session:
        [first] = (await session.exec(select(PublicUpdate))).all()
    # Named by its first public update, which counts only what was published: not by INC-4.
    assert incident.id == 4 and shown["id"] != hashed("incident", 4)
    assert shown["id"] == hashed("incident", first.id or 0)
    await sbot.command("publish major A fix is rolling out.", channel=incident.channel_id or "")
    again, _, _ = await public(sbot)
    assert [i["id"] for i in again["incidents"]] == [shown["id"]]  # stable from one update to the next


async def test_publish_needs_a_message_and_knows_its_impacts(sbot: BotHarness) -> None:
    incident = await _declare(sbot)
    await sbot.command("publish", channel=incident.channel_id or "")
    assert "Usage: /incident publish [minor|major|critical|edit]" in sbot.last_reply()
    await sbot.command("publish critical", channel=incident.channel_id or "")
    assert "Write the message the public should read" in sbot.last_reply()
    await sbot.command("publish The site is down", channel="C0GENERAL")
    assert "not an incident channel" in sbot.last_reply()
    summary, _, _ = await public(sbot)
    assert summary["incidents"] == []


async def test_html_escapes_published_text_and_answers_304_to_a_matching_etag(sbot: BotHarness) -> None:
    import httpx

    incident = await _declare(sbot)
    await sbot.command("publish minor <script>alert(1)</script> & more", channel=incident.channel_id or "")
    async with httpx.AsyncClient(base_url=sbot.url) as client:
        page = await client.get("/status-page")
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page.text
        assert page.headers["Content-Type"].startswith("text/html")
        assert "script-src" not in page.headers["Content-Security-Policy"]
        assert page.headers["Content-Encoding"] == "gzip" and page.headers["Vary"] == "Accept-Encoding"
        plain = await client.get("/status-page", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers and plain.text == page.text
        assert plain.headers["ETag"] != page.headers["ETag"]
        etag, modified = page.headers["ETag"], page.headers["Last-Modified"]
        again = await client.get("/status-page", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        since = await client.get("/status-page", headers={"If-Modified-Since": modified})
        assert since.status_code == 304
        head = await client.head("/status-page/api/v2/summary.json")
        assert head.status_code == 200 and head.content == b"" and head.headers["Access-Control-Allow-Origin"] == "*"
        css = await client.get("/status-page/status.css")
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css") and ".bar" in css.text
        feed = await client.get("/status-page/history.atom")
        assert feed.headers["Content-Type"].startswith("application/atom+xml")
        assert "&lt;script&gt;" in feed.text
        # A new publish changes the page: the old ETag no longer matches.
        await sbot.command("publish minor Recovering.", channel=incident.channel_id or "")
        changed = await client.get("/status-page", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag


async def test_the_page_shows_a_publish_while_slack_is_slow_to_take_the_channels_message(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    """During an outage Slack throttles the incident channel: the public page (and Statuspage) must not wait
    for the channel to hear of the publish, nor for the 30-second sweep."""
    incident = await _declare(sbot)
    held = sbot.fake.hold("chat.postMessage", lambda args: "published to the status page" in str(args.get("text")))
    await sbot.command(
        "publish major We are investigating failed payments.", channel=incident.channel_id or "", settle=False
    )
    await until(lambda: len(sbot.fake.held) == 1)

    summary, html, atom = await public(sbot)
    [public_incident] = summary["incidents"]
    assert public_incident["incident_updates"][0]["body"] == "We are investigating failed payments."
    assert "We are investigating failed payments." in html and "We are investigating failed payments." in atom
    await until(lambda: len(statuspage.calls) == 1)  # sent to Statuspage meanwhile too
    held.set()
    await sbot.settle()
    assert "Published to the status page" in sbot.last_reply()
