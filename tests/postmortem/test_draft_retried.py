"""The resolve's draft when Slack fails the upload: a transient failure (5xx, internal_error, still
throttled after the client's own retries) is left to the signal work, which tries again and shares
one draft; a refusal that retrying will not mend is said in the channel once and not retried; and
when the retries are given up, the channel is told once how to get the draft. The timeline never
reads "sharing" for a draft that is not in the channel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.incidents import signal_work
from bot.timeline import events
from bot.timeline.models import Kind
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot
from tests.postmortem.test_draft_once import bot_on_a_clock
from tests.web.conftest import dashboard_env

Fault = Callable[[FakeSlack], None]
_TRANSIENT: dict[str, Fault] = {
    "internal_error": lambda fake: fake.fail("files.completeUploadExternal", "internal_error"),
    "HTTP 503": lambda fake: fake.server_error("files.getUploadURLExternal", status=503),
    # What reaches the bot once the client's own waits on 429 are used up (60 of them: too slow here).
    "ratelimited": lambda fake: fake.fail("files.completeUploadExternal", "ratelimited"),
}
# A refusal, and what the channel is told to do about it.
_REFUSED: dict[str, tuple[Fault, str]] = {
    "not_in_channel": (
        lambda fake: fake.fail("files.completeUploadExternal", "not_in_channel"),
        "Add the app to this channel (channel details › Integrations), then run `/incident postmortem`.",
    ),
    "missing_scope": (
        lambda fake: fake.fail("files.getUploadURLExternal", "missing_scope"),
        "lacks the `files:write` scope: an admin must add it and reinstall the app. "
        "Meanwhile `python -m bot postmortem INC-1` on the server prints the draft.",
    ),
    "file_type_not_allowed": (
        lambda fake: fake.fail("files.completeUploadExternal", "file_type_not_allowed"),
        "does not let the bot share the file here: `python -m bot postmortem INC-1` on the server prints the draft.",
    ),
}


def _drafts(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [f.id for f in fake_slack.files.values() if f.completed and channel in f.channels]


def _about_the_draft(fake_slack: FakeSlack, channel: str) -> list[str]:
    """What the channel was told of a draft not shared: a report, or the signal work giving up."""
    return [m.text for m in fake_slack.messages(channel) if "could not be shared" in m.text or "stopped" in m.text]


async def _postmortem_lines(bot: BotHarness) -> list[tuple[str, str | None]]:
    return [
        (e.text, events.read_as(e, events.PostmortemEvent).file_id)
        for e in await bot.timeline(1)
        if e.kind == Kind.POSTMORTEM
    ]


async def _resolve(bot: BotHarness, fault: Fault) -> str:
    incident = await bot.declare()
    channel = incident.channel_id or ""
    fault(bot.fake)
    await bot.command("resolve rolled back", channel=channel)
    await bot.settle()
    return channel


@pytest.mark.parametrize("fault", _TRANSIENT.values(), ids=_TRANSIENT.keys())
async def test_a_transient_upload_failure_is_tried_again_and_shares_one_draft(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, fault: Fault
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve(bot, fault)
        assert _drafts(fake_slack, channel) == []
        assert (await bot.incident(1)).resolve_handled_at is None, "given up after one transient failure"
        await stay_up(bot, clock, every=timedelta(minutes=1), times=8)  # the retry, after the sweep's grace
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1, f"{len(drafts)} drafts shared for one resolve"
    assert lines == [("Post-mortem draft shared: INC-1-postmortem.md", drafts[0])], "recorded once"
    assert incident.resolve_handled_at is not None
    assert _about_the_draft(fake_slack, channel) == [], "the channel was told of a draft it now has"


@pytest.mark.parametrize(("fault", "advice"), _REFUSED.values(), ids=_REFUSED.keys())
async def test_a_refused_upload_is_reported_once_with_what_to_do_and_not_tried_again(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, fault: Fault, advice: str
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve(bot, fault)
        await stay_up(bot, clock, every=timedelta(minutes=1), times=20)
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
        retried = [e for e in await bot.timeline(1) if e.kind == Kind.UNFINISHED_WORK]
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1, "a refusal was tried again"
    assert retried == [] and incident.resolve_handled_at is not None
    [told] = _about_the_draft(fake_slack, channel)
    assert "could not be shared" in told and told.endswith(advice), told
    assert _drafts(fake_slack, channel) == []
    [(line, file_id)] = lines
    assert line.startswith("Post-mortem draft not shared: share the post-mortem: Slack answered ") and not file_id


async def test_a_draft_whose_upload_keeps_failing_is_given_up_and_the_channel_told_once(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve(
            bot, lambda fake: fake.server_error("files.completeUploadExternal", count=signal_work.ATTEMPTS + 5)
        )
        await stay_up(bot, clock, every=timedelta(minutes=1), times=30)  # past the last retry (~16 min)
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
        given_up = [e.text for e in await bot.timeline(1) if e.kind == Kind.UNFINISHED_WORK][-1]
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == signal_work.ATTEMPTS
    assert incident.resolve_handled_at is not None
    [told] = _about_the_draft(fake_slack, channel)
    assert "stopped trying" in told and "share the post-mortem draft (`/incident postmortem`)" in told, told
    assert "given up" in given_up and "`/incident postmortem`" in given_up, given_up
    assert _drafts(fake_slack, channel) == []
    assert lines == [("Post-mortem draft not shared: share the post-mortem: Slack answered http_500", None)]


@pytest.mark.parametrize("dashboard", [False, True], ids=["no dashboard", "dashboard on"])
async def test_a_draft_too_large_for_slack_is_tried_once_and_the_channel_told_where_to_read_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, dashboard: bool
) -> None:
    """Slack's upload URL answers 413: every attempt would be refused, `/incident postmortem` too."""
    clock = FakeClock()
    env = dashboard_env(fake_slack) if dashboard else {}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, **env)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        channel = await _resolve(bot, lambda fake: fake.refuse_upload(status=413, count=signal_work.ATTEMPTS))
        await stay_up(bot, clock, every=timedelta(minutes=1), times=20)  # past every retry there could have been
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
        retried = [e for e in await bot.timeline(1) if e.kind == Kind.UNFINISHED_WORK]
    assert [status for _, status in fake_slack.uploads] == [413], "a refusal was tried again"
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    assert retried == [] and incident.resolve_handled_at is not None
    [told] = _about_the_draft(fake_slack, channel)
    assert "could not be shared: share the post-mortem: Slack's file upload answered HTTP 413." in told, told
    assert "larger than Slack takes as a file, so `/incident postmortem` would be refused too." in told, told
    if dashboard:
        link = "http://127.0.0.1:1/incidents/INC-1/postmortem?format=markdown"
        assert told.endswith(
            f"on the dashboard: <{link}|INC-1 post-mortem>, or run `python -m bot postmortem INC-1` on the server."
        ), told
    else:
        assert told.endswith(
            "`python -m bot postmortem INC-1` on the server prints it (`-o FILE` writes it to a file)."
        ), told
    assert _drafts(fake_slack, channel) == []
    assert lines == [
        ("Post-mortem draft not shared: share the post-mortem: Slack's file upload answered HTTP 413", None)
    ]


async def test_a_503_at_the_upload_url_is_tried_again_and_said_as_slack_said_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Slack was reached and its upload URL answered 503: retried, and never told as "could not reach Slack"."""
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve(bot, lambda fake: fake.refuse_upload(status=503, count=2))
        first = await _postmortem_lines(bot)
        assert (await bot.incident(1)).resolve_handled_at is None, "given up after one transient failure"
        await stay_up(bot, clock, every=timedelta(minutes=1), times=8)
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
    assert first == [
        ("Post-mortem draft not shared: share the post-mortem: Slack's file upload answered HTTP 503", None)
    ]
    assert [status for _, status in fake_slack.uploads] == [503, 503, 200]
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1 and lines == [("Post-mortem draft shared: INC-1-postmortem.md", drafts[0])]
    assert incident.resolve_handled_at is not None
    assert _about_the_draft(fake_slack, channel) == [], "the channel was told of a draft it now has"


# The retry of a draft whose upload failed looks in the channel first (files.list); that look failing.
_LOOKUP_TRANSIENT: dict[str, Fault] = {
    "ratelimited": lambda fake: fake.fail("files.list", "ratelimited", count=2),
    "HTTP 503": lambda fake: fake.server_error("files.list", status=503, count=2),
}
_LOOKUP_REFUSED = ["missing_scope", "not_allowed_token_type", "invalid_auth"]


async def _resolve_and_retry(bot: BotHarness, clock: FakeClock, lookup: Fault) -> str:
    """The resolve's upload fails once (Slack's internal_error), so its retry looks for the draft, and that fails."""
    channel = await _resolve(bot, _TRANSIENT["internal_error"])
    lookup(bot.fake)
    await stay_up(bot, clock, every=timedelta(minutes=1), times=30)  # past the last retry there could be
    return channel


@pytest.mark.parametrize("error", _LOOKUP_REFUSED)
async def test_a_lookup_slack_refuses_for_good_is_reported_once_and_not_tried_again(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, error: str
) -> None:
    """files.list refused (a scope missing, a token of the wrong kind, revoked) was retried until the
    signal work gave up: six tries, and a "stopped trying" that hid why."""
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve_and_retry(bot, clock, lambda fake: fake.fail("files.list", error, count=10))
        incident = await bot.incident(1)
        timeline = await bot.timeline(1)
    assert len(fake_slack.calls_to("files.list")) == 1, "a refusal was tried again"
    assert incident.resolve_handled_at is not None
    assert len([e for e in timeline if e.kind == Kind.UNFINISHED_WORK]) == 1, "only the upload's failure"
    [told] = _about_the_draft(fake_slack, channel)
    assert "could not be shared: Slack could not be searched for the draft an earlier attempt may have shared" in told
    assert f"Slack answered {error}" in told and "stopped trying" not in told, told
    assert told.endswith("Run `/incident postmortem` to try again, or `python -m bot postmortem INC-1` on the server.")
    [reported] = [e.text for e in timeline if e.kind == Kind.CHAT_ERROR and "searched" in e.text]
    assert reported.startswith("Post-mortem draft not shared: Slack could not be searched") and error in reported
    assert _drafts(fake_slack, channel) == []


@pytest.mark.parametrize("lookup", _LOOKUP_TRANSIENT.values(), ids=_LOOKUP_TRANSIENT.keys())
async def test_a_lookup_that_fails_for_a_while_is_tried_again_and_shares_one_draft(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, lookup: Fault
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        channel = await _resolve_and_retry(bot, clock, lookup)
        incident = await bot.incident(1)
        lines = await _postmortem_lines(bot)
    assert len(fake_slack.calls_to("files.list")) == 3, "tried until Slack answered"
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1 and lines == [("Post-mortem draft shared: INC-1-postmortem.md", drafts[0])]
    assert incident.resolve_handled_at is not None
    assert _about_the_draft(fake_slack, channel) == []
