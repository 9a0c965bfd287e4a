"""What a private incident leaves outside its channel besides the words: message metadata and logs.

Message metadata is readable by every app in a channel (`metadata.message:read`,
`conversations.history include_all_metadata`), so the `#incidents` announcement of a private
incident must not name it there either, while a resumed setup still finds its own announcement.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlmodel import col

from bot.clock import FakeClock
from bot.incidents import setup_rows
from bot.incidents.models import Incident
from bot.incidents.recovery import resume_setups
from bot.timeline.models import Kind
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot


async def test_a_private_announcement_s_metadata_names_no_incident_yet_is_found_again(bot: BotHarness) -> None:
    bot.fake.channels["C0INCIDENTS"].members.add(bot.fake.bot_user_id)  # as `python -m bot check` requires
    first = await bot.declare("private P1 Leaked credentials")
    second = await bot.declare("private P2 Badge logs exposed")
    public = await bot.declare("P3 Search is slow")
    posted = {m.ts: m for m in bot.fake.messages("C0INCIDENTS") if not m.ephemeral_to}
    marks = {
        i.id: json.dumps((posted[i.announcement_ts or ""].metadata or {}).get("event_payload")) for i in (first, second)
    }
    for incident in (first, second):
        payload = json.loads(marks[incident.id])
        assert payload and incident.id not in payload.values() and incident.ref not in marks[incident.id], payload
    assert marks[first.id] != marks[second.id]  # each still tells its own announcement apart
    assert posted[public.announcement_ts or ""].metadata == {
        "event_type": "incident_announcement",
        "event_payload": {"incident": public.id},
    }

    # A resumed setup looks for its announcement by that metadata: each finds its own, and only its own.
    chat = bot.deps.incident_chat
    assert chat is not None
    for incident in (first, second, public):
        found = await chat.find_own_post(channel_id="C0INCIDENTS", kind="announcement", incident=incident)
        assert found == incident.announcement_ts, incident.ref


async def test_an_announcement_posted_with_the_number_in_its_metadata_loses_it_at_its_next_update(
    bot: BotHarness,
) -> None:
    incident = await bot.declare("private P1 Leaked credentials")
    [announcement] = [m for m in bot.fake.messages("C0INCIDENTS") if m.ts == incident.announcement_ts]
    announcement.metadata = {"event_type": "incident_announcement", "event_payload": {"incident": incident.id}}
    await bot.command("sev P2", channel=incident.channel_id or "")  # the announcement is updated
    assert announcement.text == "🔒 A private P2 incident was declared."
    assert announcement.metadata is not None
    assert incident.id not in announcement.metadata["event_payload"].values(), announcement.metadata


async def test_a_setup_resumed_after_the_bot_token_was_rotated_finds_its_private_announcement(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The announcement was posted, then the bot died before saving it; the token is rotated before it comes back."""
    clock = FakeClock()
    fake_slack.channels["C0INCIDENTS"].members.add(fake_slack.bot_user_id)
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as first:
        incident = await first.declare("private P1 Leaked credentials")
        posted = incident.announcement_ts
        assert posted
        async with first.deps.db.session() as session:  # as the crash left it: posted, not saved, lease held
            await session.exec(  # type: ignore[call-overload]
                update(Incident)
                .where(col(Incident.id) == incident.id)
                .values(announcement_ts=None, announcement_channel=None, setup_claimed_at=clock.now())
            )
            await session.commit()

    fake_slack.bot_token = "xoxb-rotated-token"  # Slack takes only the new one from now on
    clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
    rotated = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, slack_bot_token="xoxb-rotated-token"
    )
    async with running_bot(fake=fake_slack, settings=rotated, clock=clock) as second:
        await resume_setups(second.deps)  # done already by the start-up sweep, or now
        await second.settle()
        resumed = await second.incident(incident.id or 0)
        events = await second.timeline(incident.id or 0)

    announcements = [
        m.ts
        for m in fake_slack.messages("C0INCIDENTS")
        if (m.metadata or {}).get("event_type") == "incident_announcement"
    ]
    assert announcements == [posted] and resumed.announcement_ts == posted, announcements
    assert any(e.kind == Kind.SETUP and "reused the announcement" in e.text for e in events)
