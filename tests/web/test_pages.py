"""The dashboard's pages and writes through the real server: access (private incidents are a 404
and missing from the list), CSRF, post-mortem edits reaching every rendering, follow-ups, filters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.incidents.models import ActionItem
from bot.postmortem.cli import run_cli
from bot.postmortem.models import PostmortemSection
from bot.web import pages as pages_module
from tests.harness import BotHarness
from tests.web.conftest import Browser, csrf_of, make_private


@pytest.fixture
async def carol(site: BotHarness) -> AsyncIterator[Browser]:
    client = Browser(site)
    await client.sign_in("U0CAROL")
    yield client
    await client.close()


async def test_every_page_carries_the_security_headers(site: BotHarness, alice: Browser) -> None:
    await site.declare("P2 Search is slow")
    for path in ("/", "/incidents/INC-1", "/incidents/INC-1/postmortem", "/stats", "/oncall", "/incidents/INC-9"):
        response = await alice.get(path)
        assert response.status_code in (200, 404), path
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script" not in csp
        assert "frame-ancestors 'none'" in csp and response.headers["x-frame-options"] == "DENY"
        assert "<script" not in response.text and "style=" not in response.text, path
    css = await alice.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_a_private_incident_is_a_404_and_absent_for_a_non_member(
    site: BotHarness, alice: Browser, carol: Browser
) -> None:
    await site.declare("P1 Card data exposed service:payments")
    await site.declare("P3 Docs typo service:docs")
    await make_private(site, 1)

    for path in ("/incidents/INC-1", "/incidents/INC-1/postmortem", "/incidents/INC-1/postmortem?format=markdown"):
        hidden = await carol.get(path)
        missing = await carol.get(path.replace("INC-1", "INC-77"))
        assert hidden.status_code == missing.status_code == 404, path
        assert "Card data" not in hidden.text
        assert hidden.text.replace("INC-1", "INC-77") == missing.text
    listing = await carol.get("/")
    assert "Card data" not in listing.text and "INC-1<" not in listing.text
    assert "1–1 of 1 incident" in listing.text and "Docs typo" in listing.text
    assert 'value="docs"' in listing.text and 'value="payments"' not in listing.text  # nor in the service filter
    stats = await carol.get("/stats")
    assert "(private)" in stats.text and "payments" not in stats.text

    token = csrf_of(listing.text)
    write = await carol.post("/incidents/INC-1/postmortem", {"csrf": token, "impact": "x", "expected_impact": ""})
    assert write.status_code == 404
    async with site.deps.db.session() as session:
        assert (await session.exec(select(PostmortemSection))).all() == []

    # Alice declared it: she is in its channel, so she sees it.
    mine = await alice.get("/incidents/INC-1")
    assert mine.status_code == 200 and "Card data exposed" in mine.text and "private" in mine.text
    listing = await alice.get("/")
    assert "2 incidents" in listing.text and 'value="payments"' in listing.text


async def test_writes_need_the_csrf_token_of_this_session(site: BotHarness, alice: Browser, carol: Browser) -> None:
    incident = await site.declare("P2 Queue backlog")
    page = await alice.get(f"/incidents/{incident.ref}/postmortem")
    form = {"impact": "Orders delayed", "expected_impact": ""}
    missing = await alice.post(f"/incidents/{incident.ref}/postmortem", form)
    assert missing.status_code == 403 and "reload the page" in missing.text
    someone_elses = csrf_of((await carol.get("/")).text)
    forged = await alice.post(f"/incidents/{incident.ref}/postmortem", {**form, "csrf": someone_elses})
    assert forged.status_code == 403
    async with site.deps.db.session() as session:
        assert (await session.exec(select(PostmortemSection))).all() == []
    ok = await alice.post(f"/incidents/{incident.ref}/postmortem", {**form, "csrf": csrf_of(page.text)})
    assert ok.status_code == 303
    assert "Orders delayed</textarea>" in forged.text  # handed back, not lost


async def test_a_save_after_the_session_expired_hands_the_text_back(
    site: BotHarness, alice: Browser, clock: FakeClock
) -> None:
    incident = await site.declare("P2 Queue backlog")
    page = await alice.get(f"/incidents/{incident.ref}/postmortem")
    clock.advance(timedelta(hours=13))
    late = await alice.post(
        f"/incidents/{incident.ref}/postmortem",
        {"csrf": csrf_of(page.text), "trigger": "Cron job at 02:00", "expected_trigger": ""},
    )
    assert late.status_code == 401 and "session has expired" in late.text
    assert "Trigger<textarea readonly" in late.text and "Cron job at 02:00</textarea>" in late.text
    async with site.deps.db.session() as session:
        assert (await session.exec(select(PostmortemSection))).all() == []


async def test_edited_sections_reach_the_page_the_download_the_cli_and_the_slack_upload(
    site: BotHarness, alice: Browser
) -> None:
    incident = await site.declare("P1 Checkout is down")
    ref = incident.ref
    page = await alice.get(f"/incidents/{ref}/postmortem")
    assert page.status_code == 200 and "To be written" in page.text
    form: dict[str, Any] = {"csrf": csrf_of(page.text)}
    texts = {
        "impact": "Checkout failed for 40% of users\nfor 25 minutes",
        "root_cause": "Connection pool <script>alert(1)</script> exhausted",
        "trigger": "Deploy 4711",
        "went_well": "Paged in a minute",
        "went_wrong": "No alert on pool saturation",
        "lucky": "It was 3 a.m. | low traffic",
    }
    for key, text in texts.items():
        form[key], form[f"expected_{key}"] = text, ""
    saved = await alice.post(f"/incidents/{ref}/postmortem", form)
    assert saved.status_code == 303 and saved.headers["location"] == f"/incidents/{ref}/postmortem?saved=1#edit"

    shown = await alice.get(f"/incidents/{ref}/postmortem?saved=1")
    assert "Saved." in shown.text and "Deploy 4711" in shown.text
    assert "<script>alert(1)</script>" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert "Checkout failed for 40% of users<br>" in shown.text

    download = await alice.get(f"/incidents/{ref}/postmortem?format=markdown")
    assert download.headers["content-disposition"] == f'attachment; filename="{ref}-postmortem.md"'
    markdown = download.text
    assert "Deploy 4711" in markdown and "Paged in a minute" in markdown and "No alert on pool saturation" in markdown
    assert r"It was 3 a.m. \| low traffic" in markdown and "\\<script\\>" in markdown
    assert "To be written" not in markdown and "Describe the impact on users" not in markdown

    out: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    assert await run_cli(site.settings, incident=ref, fmt="markdown", output=None, stdout=Sink(), stderr=Sink()) == 0  # type: ignore[arg-type]
    assert "Deploy 4711" in "".join(out) and "Paged in a minute" in "".join(out)

    channel = (await site.incident(incident.id or 0)).channel_id
    assert channel is not None
    await site.command("postmortem", channel=channel)
    [upload] = [f for f in site.fake.files.values() if f.completed]
    uploaded = (upload.content or b"").decode()
    assert "Checkout failed for 40% of users" in uploaded and "Deploy 4711" in uploaded
    assert "Where we got lucky\n\nIt was 3 a.m. \\| low traffic" in uploaded

    events = [e for e in await site.timeline(incident.id or 0) if e.kind == "postmortem" and e.data.get("section")]
    assert {e.data["section"] for e in events} == set(texts)
    assert all(e.actor == "U0ALICE" and e.data["via"] == "dashboard" for e in events)


async def test_a_stale_edit_does_not_overwrite_a_colleagues_section(
    site: BotHarness, alice: Browser, carol: Browser
) -> None:
    incident = await site.declare("P2 Queue backlog")
    path = f"/incidents/{incident.ref}/postmortem"
    alice_page, carol_page = await alice.get(path), await carol.get(path)
    first = await alice.post(
        path, {"csrf": csrf_of(alice_page.text), "root_cause": "A slow consumer", "expected_root_cause": ""}
    )
    assert first.status_code == 303
    late = await carol.post(
        path, {"csrf": csrf_of(carol_page.text), "root_cause": "Disk full", "expected_root_cause": ""}
    )
    assert late.status_code == 409
    assert "changed by @alice while you were editing" in late.text and "Disk full" in late.text
    async with site.deps.db.session() as session:
        [row] = (await session.exec(select(PostmortemSection))).all()
    assert row.text == "A slow consumer" and row.updated_by == "U0ALICE"
    # Having seen Alice's text, Carol saves again against it.
    merged = await carol.post(
        path,
        {
            "csrf": csrf_of(late.text),
            "root_cause": "A slow consumer; disk full",
            "expected_root_cause": "A slow consumer",
        },
    )
    assert merged.status_code == 303


async def test_follow_ups_are_marked_done_and_reopened_on_the_timeline(site: BotHarness, alice: Browser) -> None:
    incident = await site.declare("P2 Queue backlog")
    channel = (await site.incident(incident.id or 0)).channel_id
    assert channel is not None
    await site.command("action add a consumer lag alert", channel=channel)
    page = await alice.get(f"/incidents/{incident.ref}")
    assert "add a consumer lag alert" in page.text and "Mark done" in page.text
    async with site.deps.db.session() as session:
        [item] = (await session.exec(select(ActionItem))).all()
    path = f"/incidents/{incident.ref}/followups/{item.id}"
    done = await alice.post(path, {"csrf": csrf_of(page.text), "done": "1"})
    assert done.status_code == 303 and done.headers["location"] == f"/incidents/{incident.ref}#followup-{item.id}"
    page = await alice.get(f"/incidents/{incident.ref}")
    assert "Reopen" in page.text and "Follow-up done: add a consumer lag alert" in page.text
    assert (await alice.post(path, {"csrf": csrf_of(page.text), "done": "0"})).status_code == 303
    assert (
        await alice.post(f"/incidents/{incident.ref}/followups/999", {"csrf": csrf_of(page.text), "done": "1"})
    ).status_code == 404
    events = [e for e in await site.timeline(incident.id or 0) if e.kind == "action_item_status"]
    assert [(e.actor, e.data["done"]) for e in events] == [("U0ALICE", True), ("U0ALICE", False)]
    async with site.deps.db.session() as session:
        assert (await session.get(ActionItem, item.id)).done is False  # type: ignore[union-attr]
    markdown = (await alice.get(f"/incidents/{incident.ref}/postmortem?format=markdown")).text
    assert "| add a consumer lag alert | unassigned | open |" in markdown


async def test_the_incident_page_shows_its_timeline_with_key_events_and_messages(
    site: BotHarness, alice: Browser
) -> None:
    incident = await site.declare("P1 Checkout is down")
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    await site.command("note cache flushed", channel=channel)
    await site.event(site.fake.user_says(channel, "U0BOB", "I see 502s from the gateway"))
    page = await alice.get(f"/incidents/{incident.ref}")
    text = page.text
    assert "I see 502s from the gateway" in text and "Note: cache flushed" in text
    assert 'class="key k-declared"' in text and "★" in text
    assert f"https://fake.slack.com/archives/{channel}" in text
    for heading in (
        "Summary",
        "Roles",
        "Key metrics",
        "Follow-ups",
        "Pages",
        "Restarts and rollbacks",
        "Playbook progress",
        "Timeline",
    ):
        assert f"<h2>{heading}</h2>" in text, heading
    key_only = await alice.get(f"/incidents/{incident.ref}?key=1")
    assert "I see 502s" not in key_only.text and "Declared" in key_only.text


async def test_the_list_filters_searches_and_pages(
    site: BotHarness, alice: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await site.declare("P1 Checkout is down service:payments")
    await site.declare("P3 Search is slow service:search")
    await site.declare("P2 Checkout retries service:payments")
    await site.command("resolve fixed", channel=(await site.incident(1)).channel_id or "")

    def refs(html: str) -> list[str]:
        return re.findall(r'href="/incidents/(INC-\d+)"', html)

    assert refs((await alice.get("/")).text) == ["INC-3", "INC-2", "INC-1"]
    assert refs((await alice.get("/", params={"severity": "P1"})).text) == ["INC-1"]
    assert refs((await alice.get("/", params={"service": "payments"})).text) == ["INC-3", "INC-1"]
    assert refs((await alice.get("/", params={"status": "open"})).text) == ["INC-3", "INC-2"]
    assert refs((await alice.get("/", params={"status": "resolved"})).text) == ["INC-1"]
    assert refs((await alice.get("/", params={"q": "checkout"})).text) == ["INC-3", "INC-1"]
    assert refs((await alice.get("/", params={"q": "100%_"})).text) == []
    assert refs((await alice.get("/", params={"from": "2026-11-21"})).text) == []
    assert refs((await alice.get("/", params={"from": "2026-11-20", "to": "2026-11-20"})).text) == [
        "INC-3",
        "INC-2",
        "INC-1",
    ]
    bad = await alice.get("/", params={"from": "yesterday"})
    assert bad.status_code == 200 and "is not a date: write YYYY-MM-DD" in bad.text
    assert refs((await alice.get("/", params={"severity": "p1", "status": "Resolved"})).text) == ["INC-1"]
    unknown = await alice.get("/", params={"severity": "P9", "status": "closed"})
    assert unknown.status_code == 200 and refs(unknown.text) == ["INC-3", "INC-2", "INC-1"]
    assert "Severity &#39;P9&#39; is not one of P1, P2, P3, P4: every severity is shown." in unknown.text
    assert "Status &#39;closed&#39; is not one of open, investigating" in unknown.text
    assert refs((await alice.get("/", params={"from": "0001-01-01", "to": "9999-12-31"})).text) == [
        "INC-3",
        "INC-2",
        "INC-1",
    ]

    monkeypatch.setattr(pages_module, "PAGE_SIZE", 2)
    first = await alice.get("/")
    assert refs(first.text) == ["INC-3", "INC-2"] and "1–2 of 3 incidents" in first.text and "Page 1 of 2" in first.text
    second = await alice.get("/", params={"page": "2"})
    assert refs(second.text) == ["INC-1"] and "3–3 of 3 incidents" in second.text


async def test_stats_draws_the_charts(site: BotHarness, alice: Browser) -> None:
    await site.declare("P1 Checkout is down service:payments")
    await site.command("ack", channel=(await site.incident(1)).channel_id or "")
    page = await alice.get("/stats", params={"weeks": "4"})
    assert page.status_code == 200
    assert page.text.count("<svg") == 3
    assert "Incidents declared per week, by severity" in page.text and 'class="sev-P1"' in page.text
    assert "payments" in page.text and "1 incident declared" in page.text


@pytest.mark.parametrize(
    "bot_config",
    [
        {
            "oncall": {
                "timezone": "Europe/London",
                "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0ALICE", "U0BOB", "U0CAROL"]},
                "overrides": [{"user": "U0LEAD", "start": "2026-11-25T09:00:00Z", "end": "2026-11-26T09:00:00Z"}],
            }
        }
    ],
)
async def test_oncall_shows_now_next_four_weeks_and_overrides(site: BotHarness, alice: Browser) -> None:
    page = await alice.get("/oncall")
    assert page.status_code == 200
    text = page.text
    assert "<h2>Now</h2>" in text and "<h2>Next</h2>" in text and "The next four weeks" in text
    assert "@lead" in text and "2026-11-25 09:00:00 UTC" in text
    assert {"@alice", "@bob", "@carol"} <= set(re.findall(r"@(?:alice|bob|carol)", text))


async def test_head_requests_are_reads(site: BotHarness, alice: Browser) -> None:
    await site.declare("P2 Search is slow")
    assert (await alice.http.head("/incidents/INC-1")).status_code == 200
    assert (await alice.http.head("/stats")).status_code == 200


async def test_durations_say_where_they_count_from(site: BotHarness, alice: Browser, clock: FakeClock) -> None:
    """The impact counts from its start, the key metrics from the declaration, and each says so."""
    incident = await site.declare("P1 Checkout is down")
    channel = (await site.incident(incident.id or 0)).channel_id or ""
    await site.command("started -10m", channel=channel, user="U0BOB")
    for minutes, command in ((2, "ack"), (3, "update monitoring rolled back"), (5, "resolve fixed")):
        clock.advance(timedelta(minutes=minutes))
        await site.command(command, channel=channel, user="U0BOB")

    def squeeze(html: str) -> str:
        return re.sub(r">\s+<", "><", " ".join(html.split()))

    text = squeeze((await alice.get(f"/incidents/{incident.ref}")).text)
    assert "by @bob, 10m 00s after declaration</dd>" in text
    assert (
        '<dt>Impact</dt><dd>20m 00s <span class="muted">from its start (2026-11-20 08:50:00 UTC, set by @bob)' in text
    )
    metrics = text.split('id="metrics"')[1].split("</section>")[0]
    assert "<dt>Time to detect</dt><dd>10m 00s" in metrics  # beside the others
    assert (
        '<dt>First acknowledged</dt><dd>2026-11-20 09:02:00 UTC <span class="muted">(2m 00s after declaration)'
        in metrics
    )
    assert (
        '<dt>Mitigated</dt><dd>2026-11-20 09:05:00 UTC <span class="muted">(5m 00s after declaration)</span> by @bob'
        in (metrics)
    )
    assert "(+" not in metrics

    listing = squeeze((await alice.get("/")).text)
    assert '<td data-label="Impact">20m 00s</td>' in listing


async def test_control_characters_in_filters_and_sections_are_dropped_not_a_500(
    site: BotHarness, alice: Browser
) -> None:
    """PostgreSQL text cannot hold NUL: a pasted or crafted one must not turn a search or a save into a 500."""
    incident = await site.declare("P2 Search is slow service:search")
    for params in ({"q": "se\x00arch"}, {"service": "sea\x00rch"}):
        listing = await alice.get("/", params=params)
        assert listing.status_code == 200, params
        assert f'href="/incidents/{incident.ref}"' in listing.text, params
    path = f"/incidents/{incident.ref}/postmortem"
    page = await alice.get(path)
    saved = await alice.post(
        path, {"csrf": csrf_of(page.text), "impact": "Searches\x00 took\x07 10s\n\tfor everyone", "expected_impact": ""}
    )
    assert saved.status_code == 303
    async with site.deps.db.session() as session:
        [row] = (await session.exec(select(PostmortemSection))).all()
    assert row.text == "Searches took 10s\n\tfor everyone"
    assert (await alice.get(path)).status_code == 200
