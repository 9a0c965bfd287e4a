"""The post-mortem through the real app and the fake Slack: shared on resolve, regenerated on request, stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import col

from bot.clock import FakeClock
from bot.postmortem import flows, service
from bot.timeline.models import TimelineEvent
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def app(fake_slack: FakeSlack, database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    harness, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    try:
        yield harness
    finally:
        await stop()


async def run_incident(app: BotHarness, clock: FakeClock, title: str = "P1 Checkout is down") -> tuple[int, str]:
    """Declare, ack after 4 minutes, monitoring at 20, resolve at 65."""
    incident = await app.declare(title)
    assert incident.id is not None and incident.channel_id
    channel = incident.channel_id
    clock.advance(timedelta(minutes=4))
    await app.command("ack", channel=channel, user="U0BOB")
    clock.advance(timedelta(minutes=6))
    await app.command("note the 08:55 deploy | suspicious", channel=channel, user="U0BOB")
    await app.command("action add a canary stage <@U0BOB>", channel=channel, user="U0CAROL")
    clock.advance(timedelta(minutes=10))
    await app.command("update monitoring rolled back", channel=channel)
    clock.advance(timedelta(minutes=45))
    await app.command("resolve rolled back the gateway", channel=channel)
    return incident.id, channel


def uploads(fake: FakeSlack) -> list[tuple[str, bytes]]:
    return [(f.filename, f.content or b"") for f in fake.files.values() if f.completed]


async def test_resolve_shares_the_draft_through_the_three_step_upload(app: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(app, clock)
    fake = app.fake

    # Step 1: an upload URL for exactly the bytes that follow.
    [ticket] = fake.calls_to("files.getUploadURLExternal")
    assert ticket.args["filename"] == f"INC-{number}-postmortem.md"
    # Step 2: the bytes reached the upload URL. Step 3: completed into the incident channel.
    [complete] = fake.calls_to("files.completeUploadExternal")
    assert complete.args["channel_id"] == channel
    [item] = complete.args["files"]
    assert item["title"] == f"INC-{number} post-mortem draft"
    file = fake.files[item["id"]]
    assert file.completed and file.channels == [channel]
    assert file.content is not None and int(ticket.args["length"]) == len(file.content)
    methods = [c.method for c in fake.calls]
    assert methods.index("files.getUploadURLExternal") < methods.index("files.completeUploadExternal")

    # The bytes are the rendered document, exactly: rebuild it from the database as it was then.
    events = await app.timeline(number)
    [recorded] = [e for e in events if e.kind == "postmortem"]
    assert recorded.data["file_id"] == file.id and recorded.data["finished"] is False
    assert recorded.data["bytes"] == len(file.content) and recorded.actor == "U0ALICE"
    async with app.deps.db.session() as session:
        await session.exec(delete(TimelineEvent).where(col(TimelineEvent.id) == recorded.id))  # type: ignore[call-overload]
        await session.commit()
        data = await service.build(session, incident_id=number, now=clock.now())
    data.user_names = await app.deps.get("postmortem_chat").user_names(user_ids=flows.people(data))
    assert file.content == service.render(data, fmt="markdown").encode("utf-8")

    document = file.content.decode("utf-8")
    assert document.startswith(f"# Post-mortem INC-{number}: Checkout is down\n")
    assert "- Time to acknowledge: 4m 00s" in document
    assert "- Time to mitigate (first `monitoring` status): 20m 00s" in document
    assert "- Time to resolve: 1h 05m" in document
    assert "- Incident commander: @alice" in document
    assert "the 08:55 deploy \\| suspicious" in document
    assert "| add a canary stage | @bob | open |" in document

    # One message in the channel carries the file and the short summary.
    [message] = [m for m in fake.messages(channel) if file.id in m.files]
    assert f"Post-mortem draft for INC-{number}" in message.text
    assert "acknowledged: 4m 00s" in message.text and "resolved: 1h 05m" in message.text
    assert "1 action item (1 open)" in message.text


async def test_postmortem_command_regenerates_it(app: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(app, clock)
    clock.advance(timedelta(hours=1))
    await app.command("action alert on 5xx ratio", channel=channel, user="U0BOB")
    await app.command("postmortem", channel=channel, user="U0CAROL")
    # From another channel, naming the incident.
    await app.command(f"INC-{number} pm", channel="C0GENERAL", user="U0BOB")

    files = uploads(app.fake)
    assert len(files) == 3
    assert all(name == f"INC-{number}-postmortem.md" for name, _ in files)
    latest = files[-1][1].decode()
    assert "| alert on 5xx ratio | unassigned | open |" in latest, latest
    assert "Draft generated by the incident bot on 2026-11-20 11:05:00 UTC" in latest
    assert all(f.channels == [channel] for f in app.fake.files.values())
    replies = app.replies()
    assert sum(f"Post-mortem draft for INC-{number} shared in <#{channel}>" in r for r in replies) == 2
    events = await app.timeline(number)
    shared = [e for e in events if e.kind == "postmortem"]
    assert [e.data["trigger"] for e in shared] == ["resolve", "command", "command"]
    assert [e.actor for e in shared] == ["U0ALICE", "U0CAROL", "U0BOB"]


async def test_a_regenerated_draft_reuses_the_name_lookups(app: BotHarness, clock: FakeClock) -> None:
    _, channel = await run_incident(app, clock)
    looked_up = len(app.fake.calls_to("users.info"))
    assert looked_up > 0  # the draft on resolve looked the people up
    await app.command("postmortem", channel=channel, user="U0BOB")
    assert len(uploads(app.fake)) == 2
    assert len(app.fake.calls_to("users.info")) == looked_up


async def test_postmortem_of_an_open_unacknowledged_incident(app: BotHarness, clock: FakeClock) -> None:
    incident = await app.declare("P3 Search is slow")
    assert incident.channel_id
    clock.advance(timedelta(minutes=30))
    await app.command("postmortem", channel=incident.channel_id)
    [(_, content)] = uploads(app.fake)
    document = content.decode()
    assert "- Time to acknowledge: not acknowledged" in document
    assert "- Time to resolve: not resolved yet" in document
    [message] = [m for m in app.fake.messages(incident.channel_id) if m.files]
    assert "acknowledged: not acknowledged" in message.text and "duration still open" in message.text


async def test_user_text_in_the_summary_is_escaped(app: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(app, clock, title="P1 <!channel> <script>x</script> & co")
    [message] = [m for m in app.fake.messages(channel) if m.files]
    assert "<!channel>" not in message.text and "<script>" not in message.text
    assert "&lt;!channel&gt; &lt;script&gt;x&lt;/script&gt; &amp; co" in message.text
    [(_, content)] = uploads(app.fake)
    # In the file, Slack markup becomes plain text (a file cannot ping anyone) and HTML is escaped.
    assert content.decode().splitlines()[0] == rf"# Post-mortem INC-{number}: @channel \<script\>x\</script\> & co"


async def test_a_failed_upload_is_reported_not_lost(app: BotHarness, clock: FakeClock) -> None:
    app.fake.fail("files.completeUploadExternal", "not_in_channel")
    number, channel = await run_incident(app, clock)
    texts = [m.text for m in app.fake.messages(channel) if not m.ephemeral_to]
    assert any(f"post-mortem draft for INC-{number} could not be shared" in t and "not_in_channel" in t for t in texts)
    events = await app.timeline(number)
    assert not [e for e in events if e.kind == "postmortem"]
    assert any(e.kind == "chat_error" and "Post-mortem draft not shared" in e.text for e in events)
    incident = await app.incident(number)
    assert incident.status == "resolved"  # the resolve itself stands

    # Retrying by hand works, and a failure on request is an ephemeral error.
    await app.command("postmortem", channel=channel)
    assert len(uploads(app.fake)) == 1
    app.fake.fail("files.getUploadURLExternal", "ratelimited_forever")
    await app.command("postmortem", channel=channel)
    assert "share the post-mortem" in app.last_reply() and "ratelimited_forever" in app.last_reply()


async def test_stats_command(app: BotHarness, clock: FakeClock) -> None:
    await run_incident(app, clock)  # P1: TTA 4m, TTR 1h 05m
    clock.advance(timedelta(hours=1))
    second = await app.declare("P3 service:none Search is slow")
    assert second.channel_id
    clock.advance(timedelta(minutes=10))
    await app.command("resolve fixed itself", channel=second.channel_id)  # never acknowledged

    await app.command("stats", channel="C0GENERAL", user="U0LEAD")
    reply = app.last_reply()
    assert "Incidents declared in the last 30 days" in reply and "*2*" in reply
    assert "Time to acknowledge: mean *4m 00s*, median *4m 00s* over 1 acknowledged; 1 never acknowledged" in reply
    assert "Time to resolve: mean *37m 30s*, median *37m 30s* over 2 resolved" in reply
    lines = reply.splitlines()
    p1 = next(line for line in lines if line.startswith("P1 "))
    assert p1.split() == ["P1", "1", "4m", "00s", "4m", "00s", "0", "1h", "05m", "1h", "05m", "0"]
    p3 = next(line for line in lines if line.startswith("P3 "))
    assert p3.split() == ["P3", "1", "—", "—", "1", "10m", "00s", "10m", "00s", "0"]

    clock.advance(timedelta(days=40))
    await app.command("stats 7", channel="C0GENERAL")
    assert "Incidents declared in the last 7 days (since" in app.last_reply() and "none" in app.last_reply()
    await app.command("stats 0", channel="C0GENERAL")
    assert "1 to 3650" in app.last_reply()
