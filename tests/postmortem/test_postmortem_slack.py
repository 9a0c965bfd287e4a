"""The post-mortem through the real app and the fake Slack: shared on resolve, regenerated on request, stats."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col

from bot.clock import FakeClock
from bot.postmortem import flows, service
from bot.timeline.models import TimelineEvent
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness


async def run_incident(bot: BotHarness, clock: FakeClock, title: str = "P1 Checkout is down") -> tuple[int, str]:
    """Declare, ack after 4 minutes, monitoring at 20, resolve at 65."""
    incident = await bot.declare(title)
    assert incident.id is not None and incident.channel_id
    channel = incident.channel_id
    clock.advance(timedelta(minutes=4))
    await bot.command("ack", channel=channel, user="U0BOB")
    clock.advance(timedelta(minutes=6))
    await bot.command("note the 08:55 deploy | suspicious", channel=channel, user="U0BOB")
    await bot.command("action add a canary stage <@U0BOB>", channel=channel, user="U0CAROL")
    clock.advance(timedelta(minutes=10))
    await bot.command("update monitoring rolled back", channel=channel)
    clock.advance(timedelta(minutes=45))
    await bot.command("resolve rolled back the gateway", channel=channel)
    return incident.id, channel


def uploads(fake: FakeSlack) -> list[tuple[str, bytes]]:
    return [(f.filename, f.content or b"") for f in fake.files.values() if f.completed]


async def test_resolve_shares_the_draft_through_the_three_step_upload(bot: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(bot, clock)
    fake = bot.fake

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
    events = await bot.timeline(number)
    [recorded] = [e for e in events if e.kind == "postmortem"]
    assert recorded.data["file_id"] == file.id and recorded.data["finished"] is False
    assert recorded.data["bytes"] == len(file.content) and recorded.actor == "U0ALICE"
    async with bot.deps.db.session() as session:
        await session.exec(delete(TimelineEvent).where(col(TimelineEvent.id) == recorded.id))  # type: ignore[call-overload]
        await session.commit()
        data = await service.build(session, incident_id=number, now=clock.now())
    assert bot.deps.postmortem_chat is not None
    data.user_names = await bot.deps.postmortem_chat.user_names(user_ids=flows.people(data))
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
    # Each figure says where it counts from; time to detect stands beside the others.
    assert (
        "🔴 P1 (critical) · impact 1h 05m from the declaration · time to detect 0s · "
        "after declaration: acknowledged 4m 00s, mitigated 20m 00s, resolved 1h 05m\n"
    ) in message.text
    assert "1 action item (1 open)" in message.text


async def test_postmortem_command_regenerates_it(bot: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(bot, clock)
    clock.advance(timedelta(hours=1))
    await bot.command("action alert on 5xx ratio", channel=channel, user="U0BOB")
    await bot.command("postmortem", channel=channel, user="U0CAROL")
    # From another channel, naming the incident.
    await bot.command(f"INC-{number} pm", channel="C0GENERAL", user="U0BOB")

    files = uploads(bot.fake)
    assert len(files) == 3
    assert all(name == f"INC-{number}-postmortem.md" for name, _ in files)
    latest = files[-1][1].decode()
    assert "| alert on 5xx ratio | unassigned | open |" in latest, latest
    assert "Draft generated by the incident bot on 2026-11-20 11:05:00 UTC" in latest
    assert all(f.channels == [channel] for f in bot.fake.files.values())
    replies = bot.replies()
    assert sum(f"Post-mortem draft for INC-{number} shared in <#{channel}>" in r for r in replies) == 2
    events = await bot.timeline(number)
    shared = [e for e in events if e.kind == "postmortem"]
    assert [e.data["trigger"] for e in shared] == ["resolve", "command", "command"]
    assert [e.actor for e in shared] == ["U0ALICE", "U0CAROL", "U0BOB"]


async def test_a_regenerated_draft_reuses_the_name_lookups(bot: BotHarness, clock: FakeClock) -> None:
    _, channel = await run_incident(bot, clock)
    looked_up = len(bot.fake.calls_to("users.info"))
    assert looked_up > 0  # the draft on resolve looked the people up
    await bot.command("postmortem", channel=channel, user="U0BOB")
    assert len(uploads(bot.fake)) == 2
    # Only the access check's one lookup of who asked (is Bob a guest?); no name is looked up again.
    assert [c.args["user"] for c in bot.fake.calls_to("users.info")[looked_up:]] == ["U0BOB"]


async def test_postmortem_of_an_open_unacknowledged_incident(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P3 Search is slow")
    assert incident.channel_id
    clock.advance(timedelta(minutes=30))
    await bot.command("postmortem", channel=incident.channel_id)
    [(_, content)] = uploads(bot.fake)
    document = content.decode()
    assert "- Time to acknowledge: not acknowledged" in document
    assert "- Time to resolve: not resolved yet" in document
    [message] = [m for m in bot.fake.messages(incident.channel_id) if m.files]
    assert (
        "impact ongoing, 30m 00s so far from the declaration · time to detect 0s · "
        "after declaration: not acknowledged, not mitigated, not resolved yet\n"
    ) in message.text


async def test_user_text_in_the_summary_is_escaped(bot: BotHarness, clock: FakeClock) -> None:
    number, channel = await run_incident(bot, clock, title="P1 <!channel> <script>x</script> & co")
    [message] = [m for m in bot.fake.messages(channel) if m.files]
    assert "<!channel>" not in message.text and "<script>" not in message.text
    assert "&lt;!channel&gt; &lt;script&gt;x&lt;/script&gt; &amp; co" in message.text
    [(_, content)] = uploads(bot.fake)
    # In the file, Slack markup becomes plain text (a file cannot ping anyone) and HTML is escaped.
    assert content.decode().splitlines()[0] == rf"# Post-mortem INC-{number}: @channel \<script\>x\</script\> & co"


async def test_a_failed_upload_is_reported_not_lost(bot: BotHarness, clock: FakeClock) -> None:
    bot.fake.fail("files.completeUploadExternal", "not_in_channel")
    number, channel = await run_incident(bot, clock)
    texts = [m.text for m in bot.fake.messages(channel) if not m.ephemeral_to]
    assert any(f"post-mortem draft for INC-{number} could not be shared" in t and "not_in_channel" in t for t in texts)
    events = await bot.timeline(number)
    # The attempt (what a retry would look for in Slack first) says it was not shared, and why, once.
    assert [e.text for e in events if e.kind == "postmortem"] == [
        "Post-mortem draft not shared: share the post-mortem: Slack answered not_in_channel"
    ]
    assert not [e for e in events if e.kind == "postmortem" and e.data.get("file_id")]
    assert not [e for e in events if "not shared" in e.text and e.kind != "postmortem"]
    incident = await bot.incident(number)
    assert incident.status == "resolved"  # the resolve itself stands

    # Retrying by hand works, and a failure on request is an ephemeral error.
    await bot.command("postmortem", channel=channel)
    assert len(uploads(bot.fake)) == 1
    bot.fake.fail("files.getUploadURLExternal", "ratelimited_forever")
    await bot.command("postmortem", channel=channel)
    assert "share the post-mortem" in bot.last_reply() and "ratelimited_forever" in bot.last_reply()


async def test_stats_command(bot: BotHarness, clock: FakeClock) -> None:
    await run_incident(bot, clock)  # P1: TTA 4m, TTR 1h 05m
    clock.advance(timedelta(hours=1))
    second = await bot.declare("P3 service:none Search is slow")
    assert second.channel_id
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve fixed itself", channel=second.channel_id)  # never acknowledged

    await bot.command("stats", channel="C0GENERAL", user="U0LEAD")
    reply = bot.last_reply()
    assert "Incidents declared in the last 30 days" in reply and "*2*" in reply
    assert "Time to acknowledge: mean *4m 00s*, median *4m 00s* over 1 acknowledged; 1 never acknowledged" in reply
    assert "Time to resolve: mean *37m 30s*, median *37m 30s* over 2 resolved" in reply
    lines = reply.splitlines()
    p1 = next(line for line in lines if line.startswith("P1 "))
    # count, TTD mean (declared by hand: impact start is the declaration), TTA mean/median, unacked,
    # TTM mean (first `monitoring` at 20m), TTR mean/median, open
    assert p1.split() == ["P1", "1", "0s", "4m", "00s", "4m", "00s", "0", "20m", "00s", "1h", "05m", "1h", "05m", "0"]
    p3 = next(line for line in lines if line.startswith("P3 "))
    assert p3.split() == ["P3", "1", "0s", "—", "—", "1", "10m", "00s", "10m", "00s", "10m", "00s", "0"]

    clock.advance(timedelta(days=40))
    await bot.command("stats 7", channel="C0GENERAL")
    assert "Incidents declared in the last 7 days (since" in bot.last_reply() and "none" in bot.last_reply()
    await bot.command("stats 0", channel="C0GENERAL")
    assert "1 to 3650" in bot.last_reply()


async def test_a_long_title_is_cut_before_it_is_escaped(bot: BotHarness, clock: FakeClock) -> None:
    """Cutting the escaped title could split `&lt;` and show `&l…` in the channel."""
    title = "a" * 197 + "<b> and then some more words"
    number, channel = await run_incident(bot, clock, title=f"P1 {title}")
    [message] = [m for m in bot.fake.messages(channel) if m.files]
    head = message.text.splitlines()[0]
    assert head == f"📝 *Post-mortem draft for INC-{number}*: {'a' * 197}&lt;b…"
