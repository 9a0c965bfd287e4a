"""Property: any /incident text, through the real app over signed HTTP, gets an answer and crashes nothing.

Hypothesis drives a synchronous test, so the bot runs on one long-lived event loop (an
`asyncio.Runner` owned by a module fixture) and each example is one `runner.run(...)`. State
carries over between examples on purpose: commands land on open, resolved and missing incidents.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import USERS, make_settings
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import ErrorLog, bot_errors, unpace_channel_creation
from tests.fuzz.strategies import SUBCOMMANDS, command_text, word
from tests.harness import BotHarness, start_bot
from tests.pg import create_database

BOT_CONFIG = {
    "services": {
        "api": {"health_url": "http://127.0.0.1:9/health"},
        "web": {"health_url": "http://127.0.0.1:9/h"},
    },
}


@dataclass
class LiveBot:
    runner: asyncio.Runner
    bot: BotHarness
    incident_channel: str
    errors: ErrorLog

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str | None) -> Iterator[LiveBot]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    if postgres_admin_url is None:
        database_url = f"sqlite:///{tmp / 'bot.db'}"
    else:
        database_url = postgres_admin_url.rsplit("/", 1)[0] + "/" + create_database(postgres_admin_url)
    with asyncio.Runner() as runner, bot_errors() as errors:

        async def start() -> tuple[BotHarness, Any, FakeSlack]:
            fake = FakeSlack()
            await fake.start()
            for user_id, name in USERS.items():
                fake.add_user(user_id, name)
            for name, cid in (("general", "C0GENERAL"), ("incidents", "C0INCIDENTS"), ("alerts", "C0ALERTS")):
                fake.add_channel(name, channel_id=cid, members=list(USERS))
            settings_ = make_settings(fake=fake, database_url=database_url, tmp_path=tmp, config=BOT_CONFIG)
            harness, stop = await start_bot(fake=fake, settings=settings_)
            unpace_channel_creation(harness.deps)  # examples declare dozens of incidents
            await harness.declare("P2 Fuzzing target")
            return harness, stop, fake

        harness, stop, fake = runner.run(start())
        channel = harness.fake.channels[next(c for c in fake.channels if fake.channels[c].name.startswith("inc-1"))]
        assert not errors.records, errors.describe()
        try:
            yield LiveBot(runner=runner, bot=harness, incident_channel=channel.id, errors=errors)
        finally:

            async def shutdown() -> None:
                await stop()
                await fake.stop()

            runner.run(shutdown())


async def _send(live: LiveBot, text: str, channel: str, user: str, command: str = "/incident") -> list[str]:
    """Run one command; return what the user got back (ack body, response_url posts, modal, ephemeral)."""
    bot = live.bot
    responses, calls = len(bot.fake.responses), len(bot.fake.calls)
    response = await bot.command(text, channel=channel, user=user, command=command)
    assert response.status_code == 200, (response.status_code, response.text)
    answers = []
    if response.text:
        body = json.loads(response.text)
        answers.append(str(body.get("text") or body.get("blocks") or ""))
    answers += [str(r.get("text") or r.get("blocks")) for r in bot.fake.responses[responses:]]
    for call in bot.fake.calls[calls:]:
        if call.method == "views.open" and call.response.get("ok"):
            answers.append("modal opened")
        if call.method == "chat.postEphemeral" and call.args.get("user") == user:
            answers.append(str(call.args.get("text")))
    return [a for a in answers if a.strip()]


def _check(live: LiveBot, text: str, where: str, user: str, command: str = "/incident") -> None:
    channel = live.incident_channel if where == "incident" else "C0GENERAL"
    before = len(live.errors.records)
    answers = live.run(_send(live, text, channel, user, command))
    new_errors = live.errors.records[before:]
    assert not new_errors, f"{text!r} logged errors:\n" + "\n".join(r.getMessage() for r in new_errors)
    assert answers, f"{command} {text!r} in {where}: the user got no answer"


FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
where = st.sampled_from(["incident", "general"])
user = st.sampled_from(["U0ALICE", "U0BOB", "U0CTO"])


@FUZZ
@given(data=st.data())
def test_any_subcommand_gets_an_answer(live: LiveBot, data: st.DataObject) -> None:
    subcommand = data.draw(st.sampled_from(SUBCOMMANDS), label="subcommand")
    text = data.draw(command_text(subcommand), label="text")
    _check(live, text, data.draw(where, label="where"), data.draw(user, label="user"))


@FUZZ
@given(text=command_text(), where=where, user=user)
@example(text="", where="general", user="U0ALICE")
@example(text="declare", where="incident", user="U0BOB")
@example(text="INC-1 resolve done <!channel>", where="general", user="U0ALICE")
@example(text="INC-1 update monitoring", where="general", user="U0ALICE")
@example(text="ack", where="incident", user="U0BOB")
@example(text="role commander <@U0NOBODY>", where="incident", user="U0BOB")
@example(text="INC-999999999 note hello", where="general", user="U0BOB")
@example(text="declare P1 " + "数" * 300, where="general", user="U0CTO")
def test_any_text_gets_an_answer(live: LiveBot, text: str, where: str, user: str) -> None:
    _check(live, text, where, user)


ops_word = st.one_of(
    st.sampled_from(["api", "web", "API", "nope", "svc:api", "dpl_123", "abc-123", "<!channel>", "--force", "INC-1"]),
    word,
)


@FUZZ
@given(
    command=st.sampled_from(["/status", "/restart", "/rollback"]),
    words=st.lists(ops_word, max_size=4),
    where=where,
    user=st.sampled_from(["U0ALICE", "U0LEAD", "U0CTO"]),
)
@example(command="/status", words=[], where="incident", user="U0ALICE")
@example(command="/restart", words=["api"], where="general", user="U0LEAD")
@example(command="/rollback", words=["web", "dpl_1", "extra"], where="general", user="U0CTO")
def test_status_restart_rollback_get_an_answer(
    live: LiveBot, command: str, words: list[str], where: str, user: str
) -> None:
    _check(live, " ".join(words), where, user, command)
