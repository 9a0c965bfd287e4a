"""The HTML draft: same data as the Markdown, with every user-typed value escaped."""

from __future__ import annotations

from datetime import timedelta

from bot.db import Database
from bot.postmortem import service
from tests.postmortem.seed import T0, ev, seed_full, seed_unacknowledged

NOW = T0 + timedelta(hours=2)
SCRIPT = "<script>alert('pwned')</script>"


async def html_of(db: Database, number: int) -> str:
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=NOW)
    return service.render(data, fmt="html")


async def add_key_message(db: Database, number: int, text: str, permalink: str | None = None) -> None:
    """A channel message by U0BOB at minute 11, marked key (so both timelines show it)."""
    async with db.session() as session:
        session.add(ev(number, 11, "message", "U0BOB", text, key=True, permalink=permalink))
        await session.commit()


async def test_script_in_title_notes_and_messages_is_escaped(db: Database) -> None:
    number = await seed_full(db, title=f"DB down {SCRIPT}", note=f"look: {SCRIPT}\n<img src=x onerror=alert(1)>")
    # Slack delivers message text with its own entities; decoding them must not create a tag.
    await add_key_message(db, number, "&lt;script&gt;alert(2)&lt;/script&gt; from Slack")
    page = await html_of(db, number)

    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "<title>Post-mortem INC-7: DB down &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;</title>" in page
    assert "<h1>Post-mortem INC-7: DB down &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;</h1>" in page
    assert "look: &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;<br>\n&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt; from Slack" in page


async def test_html_has_the_same_sections_and_metrics(db: Database) -> None:
    page = await html_of(db, await seed_full(db))
    for heading in (
        "Summary",
        "Impact",
        "Detection",
        "Key metrics",
        "Responders and roles",
        "Escalations",
        "Timeline of key events",
        "Actions taken",
        "Playbook progress",
        "Root cause, trigger and resolution",
        "Action items",
        "Lessons learned",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert '<h2 id="full-timeline">Full timeline</h2>' in page
    assert '<a href="#full-timeline">full timeline</a>' in page
    assert "<li>Time to acknowledge: 4m 00s</li>" in page
    assert "<td>First acknowledged</td><td>2026-11-20 09:04:00</td><td>4m 00s</td><td>@U0BOB</td>" in page
    assert page.rstrip().endswith("</html>")


async def test_html_unacknowledged_says_so(db: Database) -> None:
    page = await html_of(db, await seed_unacknowledged(db))
    assert '<li>Time to acknowledge: <span class="missing">not acknowledged</span></li>' in page
    assert '<li>Time to resolve: <span class="missing">not resolved yet</span></li>' in page


async def test_javascript_links_are_dropped(db: Database) -> None:
    number = await seed_full(db)
    await add_key_message(db, number, "click", permalink="javascript:alert(1)")
    page = await html_of(db, number)
    assert "javascript:" not in page
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=NOW)
    assert "javascript:" not in service.render(data, fmt="markdown")
