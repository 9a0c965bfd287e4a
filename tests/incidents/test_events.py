"""Channel messages, 📌 reactions and pins become timeline events, exactly once."""

from __future__ import annotations

from sqlmodel import select

from bot.timeline.models import KeyMark
from bot.timeline.shown import NO_TEXT
from tests.harness import BotHarness


def _message(channel: str, ts: str, text: str, user: str = "U0BOB") -> dict[str, object]:
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "channel_type": "channel"}


async def test_messages_are_stored_once_even_when_slack_retries(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    event = bot.fake.user_says(channel, "U0BOB", "consumer lag is 2M")
    first = await bot.event(event, event_id="Ev100")
    retry = await bot.event(event, event_id="Ev100", retry_num=1)
    assert first.status_code == retry.status_code == 200
    # Same message delivered under a new event id (e.g. to a second replica): still one row.
    await bot.event(event, event_id="Ev101")
    messages = [e for e in await bot.timeline(1) if e.kind == "message"]
    assert [(m.actor, m.text, m.message_ts) for m in messages] == [("U0BOB", "consumer lag is 2M", event["ts"])]
    assert messages[0].permalink and str(event["ts"]).replace(".", "") in messages[0].permalink


async def test_messages_outside_incident_channels_and_the_bot_s_own_are_ignored(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Queue backlog")
    assert incident.channel_id
    await bot.event(_message("C0GENERAL", "1790000000.000200", "lunch?"))
    own = {"bot_id": bot.fake.bot_id, "app_id": "A0SELF", "bot_profile": {"id": bot.fake.bot_id, "name": "incident"}}
    await bot.event({**_message(incident.channel_id, "1790000000.000300", "summary", user=bot.fake.bot_user_id), **own})
    await bot.event(
        {**_message(incident.channel_id, "1790000000.000350", "page"), "subtype": "bot_message", "user": "", **own}
    )
    await bot.event({**_message(incident.channel_id, "1790000000.000400", ""), "subtype": "channel_join"})
    assert [e for e in await bot.timeline(1) if e.kind == "message"] == []
    # Chatter in other channels costs a read, never a write; a message event is claimed only with
    # what it stores, so those dropped in the incident channel write nothing either.
    async with bot.deps.db.session() as session:
        from sqlmodel import select

        from bot.timeline.models import ProcessedEvent

        claims = (await session.exec(select(ProcessedEvent))).all()
    assert claims == []


async def test_other_apps_messages_are_kept_with_the_app_as_actor(bot: BotHarness) -> None:
    """A deploy, alert or CI bot's messages say what was deployed when: the post-mortem needs them."""
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    # A classic integration (webhook): `bot_message`, named by `username`, its words in an attachment.
    deploy = {**_message(channel, "1790000000.000500", ""), "subtype": "bot_message", "bot_id": "B0DEPLOY"}
    deploy.pop("user")
    deploy |= {"username": "deploy-bot", "attachments": [{"fallback": "api v42 deployed to production"}]}
    # An app posting as its bot user: a `user`, and the app's name in `bot_profile`.
    ci = {**_message(channel, "1790000000.000600", "build #812 passed", user="U0CIBOT"), "bot_id": "B0CI"}
    ci["bot_profile"] = {"id": "B0CI", "app_id": "A0CI", "name": "CI"}
    # Nameless, and an app whose name looks like a user id: never shown as a mention.
    anonymous = {**_message(channel, "1790000000.000700", "ping"), "subtype": "bot_message", "bot_id": "B0ANON"}
    anonymous.pop("user")
    uptime = {**_message(channel, "1790000000.000800", "api is down", user="U0UPBOT"), "bot_id": "B0UP"}
    uptime["bot_profile"] = {"id": "B0UP", "name": "UPTIME"}
    for event in (deploy, ci, anonymous, uptime):
        await bot.event(event)
    messages = [(e.actor, e.text) for e in await bot.timeline(1) if e.kind == "message"]
    assert messages == [
        ("deploy-bot", "api v42 deployed to production"),
        ("CI", "build #812 passed"),
        ("B0ANON", "ping"),
        ("UPTIME (app)", "api is down"),
    ]
    await bot.command("timeline", channel=channel)
    reply = bot.last_reply()
    assert "deploy-bot" in reply and "B0ANON" in reply and "UPTIME (app)" in reply, reply
    assert "<@B0" not in reply and "<@CI" not in reply and "<@UPTIME" not in reply and "<@U0CIBOT" not in reply


async def test_edits_update_the_stored_text(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    await bot.event(_message(channel, "1790000000.000500", "lag 2M"))
    await bot.event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": channel,
            "ts": "1790000001.000000",
            "message": {"type": "message", "user": "U0BOB", "text": "lag 3M", "ts": "1790000000.000500"},
        }
    )
    assert [e.text for e in await bot.timeline(1) if e.kind == "message"] == ["lag 3M"]


async def test_pushpin_reaction_and_pin_mark_key_events_and_removal_unmarks(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    await bot.event(_message(channel, "1790000000.000600", "root cause: expired cert"))
    reaction = {
        "type": "reaction_added",
        "user": "U0CAROL",
        "reaction": "pushpin",
        "item": {"type": "message", "channel": channel, "ts": "1790000000.000600"},
        "item_user": "U0BOB",
        "event_ts": "1790000002.000000",
    }
    await bot.event(reaction)

    async def key() -> bool:
        return next(e for e in await bot.timeline(1) if e.message_ts == "1790000000.000600").key

    assert await key()
    await bot.event({**reaction, "type": "reaction_removed"})
    assert not await key()
    # Other reactions change nothing.
    await bot.event({**reaction, "reaction": "eyes"})
    assert not await key()

    pin = {
        "type": "pin_added",
        "user": "U0CAROL",
        "channel_id": channel,
        "item": {"type": "message", "channel": channel, "message": {"ts": "1790000000.000600", "text": "x"}},
        "event_ts": "1790000003.000000",
    }
    await bot.event(pin)
    assert await key()
    await bot.event({**pin, "type": "pin_removed"})
    assert not await key()


async def test_pinning_a_message_the_bot_never_saw_stores_it_as_key(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    posted = bot.fake.messages(channel)[0]  # the bot's own summary, never stored as a message event
    await bot.event(
        {
            "type": "reaction_added",
            "user": "U0CAROL",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": channel, "ts": posted.ts},
            "event_ts": "1790000004.000000",
        }
    )
    stored = [e for e in await bot.timeline(1) if e.message_ts == posted.ts]
    assert len(stored) == 1 and stored[0].key


async def test_the_timeline_command_shows_messages_as_people_wrote_them(bot: BotHarness) -> None:
    """Slack sends `<`, `>` and `&` encoded; escaping that again showed `&lt;` and `&amp;` as text in
    `/incident timeline`. Markup stays shown as text: `<!channel>` pings nobody."""
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    event = bot.fake.user_says(channel, "U0BOB", "<@U0CAROL|carol> p95 &lt; 200ms &amp; falling <!channel>")
    await bot.event(event, event_id="Ev300")
    await bot.command("timeline", channel=channel)
    reply = bot.last_reply()
    assert "&lt;@U0CAROL|carol&gt; p95 &lt; 200ms &amp; falling &lt;!channel&gt;" in reply, reply
    assert "&amp;lt;" not in reply and "&amp;amp;" not in reply and "<!channel>" not in reply


async def test_a_file_shared_without_a_comment_keeps_its_name(bot: BotHarness) -> None:
    """A screenshot dropped in the channel was kept as an empty line: the timeline said nothing of it."""
    incident = await bot.declare("P2 Queue backlog")
    channel = incident.channel_id
    assert channel
    files = [
        {"id": "F01", "name": "lag.png", "title": "Consumer lag <last hour>", "mimetype": "image/png"},
        {"id": "F02", "name": "dump.txt", "title": "", "mimetype": "text/plain"},
    ]
    shared = {**_message(channel, "1790000000.000700", ""), "subtype": "file_share", "files": files}
    await bot.event(shared)
    commented = {**_message(channel, "1790000000.000800", "after the deploy"), "subtype": "file_share"}
    await bot.event({**commented, "files": files[:1]})
    texts = [e.text for e in await bot.timeline(1) if e.kind == "message"]
    assert texts == [
        "📎 Consumer lag &lt;last hour&gt; · 📎 dump.txt",
        "after the deploy\n📎 Consumer lag &lt;last hour&gt;",
    ]


async def test_a_message_stays_key_while_a_pushpin_or_its_pin_remains(bot: BotHarness) -> None:
    """Two people 📌 the same message and one takes theirs back, or a pinned message loses its 📌: the
    message is still marked in the channel, so it stays a key event. The last marker removed unmarks it."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    said = bot.fake.user_says(channel, "U0BOB", "root cause: expired cert")
    await bot.event(said)
    ts = str(said["ts"])
    message = bot.fake.channels[channel].find(ts)
    assert message is not None
    item = {"type": "message", "channel": channel, "ts": ts}

    async def react(user: str, kind: str) -> None:
        users = message.reactions.setdefault("pushpin", [])
        if kind == "reaction_added":
            users.append(user)
        else:
            users.remove(user)
        if not users:
            del message.reactions["pushpin"]
        await bot.event({"type": kind, "user": user, "reaction": "pushpin", "item": item, "event_ts": ts})

    async def pin(kind: str) -> None:
        pins = bot.fake.channels[channel].pins
        if kind == "pin_added":
            pins.append(ts)
        else:
            pins.remove(ts)
        pinned = {"type": "message", "channel": channel, "message": {"ts": ts, "text": "x"}}
        await bot.event({"type": kind, "user": "U0ERIN", "channel_id": channel, "item": pinned, "event_ts": ts})

    async def key() -> bool:
        return next(e for e in await bot.timeline(1) if e.message_ts == ts).key

    await react("U0CAROL", "reaction_added")
    await react("U0DAN", "reaction_added")
    await react("U0DAN", "reaction_removed")
    assert await key()  # Carol's 📌 is still there
    await pin("pin_added")
    await react("U0CAROL", "reaction_removed")
    assert await key()  # still pinned
    await pin("pin_removed")
    assert not await key()


async def test_the_timeline_command_says_a_key_message_s_text_could_not_be_read_and_links_it(
    bot: BotHarness,
) -> None:
    """A 📌 carries no text and Slack's history could not be read: `/incident timeline` showed the key
    line empty. It says so, with the message's link, as the post-mortem and the dashboard do."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    ts = str(bot.fake.user_says(channel, "U0BOB", "failover to db-2 done")["ts"])  # its event never came
    bot.fake.fail("conversations.history", "internal_error")
    item = {"type": "message", "channel": channel, "ts": ts}
    await bot.event(
        {"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": "U0BOB"}
    )
    await bot.command("timeline", channel=channel)
    link = f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    (line,) = [line for line in bot.last_reply().splitlines() if link in line]
    assert "📌 *message* <@U0BOB>" in line and f"{NO_TEXT} <{link}|↗>" in line, line


async def test_a_deleted_key_message_is_no_longer_key_and_loses_its_dead_link(bot: BotHarness) -> None:
    """Slack takes a deleted message's 📌s and pin with it: the post-mortem's key timeline kept a line
    that said only "(message deleted)", linked to a message that no longer exists. The timeline keeps
    that a message was deleted there; not its words, its key mark or its link."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    ts = "1790000000.000600"
    await bot.event(_message(channel, ts, "root cause: expired cert"))
    item = {"type": "message", "channel": channel, "ts": ts}
    await bot.event({"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item})
    deleted = {"type": "message", "subtype": "message_deleted", "channel": channel, "deleted_ts": ts}
    await bot.event({**deleted, "ts": "1790000009.000000", "previous_message": {"type": "message", "ts": ts}})
    stored = [(e.text, e.key, e.permalink) for e in await bot.timeline(1) if e.message_ts == ts]
    assert stored == [("(message deleted)", False, None)]
    await bot.command("timeline", channel=channel)
    (line,) = [line for line in bot.last_reply().splitlines() if "(message deleted)" in line]
    assert "📌" not in line and "archives" not in line, line


async def test_a_pushpin_removed_after_its_message_was_deleted_does_not_mark_it_key_again(bot: BotHarness) -> None:
    """Two people 📌 a message, then it is deleted: its markers' rows outlived it, so Slack's removal of
    one 📌, delivered after the deletion, found the other's row and marked the deleted message key again."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    ts = "1790000000.000600"
    await bot.event(_message(channel, ts, "root cause: expired cert"))
    item = {"type": "message", "channel": channel, "ts": ts}
    for user in ("U0CAROL", "U0DAN"):
        await bot.event({"type": "reaction_added", "user": user, "reaction": "pushpin", "item": item})
    deleted = {"type": "message", "subtype": "message_deleted", "channel": channel, "deleted_ts": ts}
    await bot.event({**deleted, "ts": "1790000009.000000", "previous_message": {"type": "message", "ts": ts}})
    async with bot.deps.db.session() as session:
        left = (await session.exec(select(KeyMark).where(KeyMark.message_ts == ts))).all()
    assert left == []
    await bot.event({"type": "reaction_removed", "user": "U0CAROL", "reaction": "pushpin", "item": item})
    stored = [(e.text, e.key) for e in await bot.timeline(1) if e.message_ts == ts]
    assert stored == [("(message deleted)", False)]
