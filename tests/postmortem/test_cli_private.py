"""`python -m bot postmortem` goes through the same access check as every other surface: a private
incident is printed only for someone `--as` names who may see it (its channel's members, or the
people in `permissions.private_incidents`)."""

from __future__ import annotations

import io
from typing import Any

from sqlmodel import update

from bot.config import BotConfig
from bot.db import Database
from bot.incidents.models import Incident
from bot.postmortem.cli import run_cli
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlack
from tests.postmortem.seed import seed_full


async def _private(db: Database) -> None:
    await seed_full(db)
    async with db.session() as session:
        await session.exec(update(Incident).where(Incident.id == 7).values(private=True))  # type: ignore[arg-type]
        await session.commit()


def _settings(database_url: str, fake: FakeSlack | None, *, privileged: tuple[str, ...] = ()) -> Settings:
    config = BotConfig.model_validate({"permissions": {"private_incidents": list(privileged)}})
    extra: dict[str, Any] = {"slack_bot_token": fake.bot_token, "slack_api_url": fake.url} if fake else {}
    return Settings(database_url=database_url, config=config, _env_file=None, **extra)  # type: ignore[call-arg]


async def _run(settings: Settings, reader: str | None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_cli(settings, incident="INC-7", fmt="markdown", output=None, reader=reader, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


async def test_a_private_incident_needs_to_know_who_will_read_it(db: Database, database_url: str) -> None:
    await _private(db)
    code, out, err = await _run(_settings(database_url, None), None)
    assert (code, out) == (1, "")
    assert "INC-7 is private" in err and "--as" in err and err.count("\n") == 1


async def test_it_is_printed_for_a_member_of_its_channel_and_not_for_anyone_else(
    db: Database, database_url: str
) -> None:
    await _private(db)
    async with FakeSlack() as fake:
        fake.add_user("U0ALICE", "alice")
        fake.add_user("U0MALLORY", "mallory")
        fake.add_user("U0GONE", "gone", deleted=True)  # deactivated: Slack still lists them in the channel
        members = ["U0ALICE", "U0GONE", fake.bot_user_id]
        fake.add_channel("inc-7-checkout", channel_id="C0INC7", private=True, members=members)
        settings = _settings(database_url, fake)
        member = await _run(settings, "U0ALICE")
        stranger = await _run(settings, "U0MALLORY")
        gone = await _run(settings, "U0GONE")
        read = [c.args.get("channel") for c in fake.calls_to("conversations.members")]
    assert member[0] == 0 and "Checkout" in member[1]
    assert stranger[:2] == (1, "") and "U0MALLORY may not see it" in stranger[2]
    assert gone[:2] == (1, "") and "U0GONE may not see it" in gone[2]
    assert read and set(read) == {"C0INC7"}


async def test_the_people_allowed_every_private_incident_need_no_slack(db: Database, database_url: str) -> None:
    await _private(db)
    code, out, _ = await _run(_settings(database_url, None, privileged=("U0SEC",)), "U0SEC")
    assert code == 0 and "Checkout" in out
    code, out, err = await _run(_settings(database_url, None, privileged=("U0SEC",)), "U0ALICE")
    assert (code, out) == (1, "") and "SLACK_BOT_TOKEN is not set" in err


async def test_a_public_incident_is_printed_as_before(db: Database, database_url: str) -> None:
    await seed_full(db)
    code, out, _ = await _run(_settings(database_url, None), None)
    assert code == 0 and "Checkout" in out


async def test_a_public_incident_goes_through_the_access_check_for_the_person_named(
    db: Database, database_url: str
) -> None:
    await seed_full(db)
    async with db.session() as session:
        incident = await session.get(Incident, 7)
    assert incident is not None and not incident.private and incident.channel_id
    async with FakeSlack() as fake:
        fake.add_channel("inc-7-checkout", channel_id=incident.channel_id, members=["U0ALICE", fake.bot_user_id])
        fake.add_user("U0ALICE", "alice")
        fake.add_user("U0VENDOR", "vendor", guest="multi")
        fake.add_user("U0INVITED", "invited", guest="single")
        fake.channels[incident.channel_id].members.add("U0INVITED")
        settings = _settings(database_url, fake)
        member = await _run(settings, "U0ALICE")
        guest = await _run(settings, "U0VENDOR")
        invited = await _run(settings, "U0INVITED")
        unknown = await _run(settings, "U0NOBODY")
    assert member[0] == 0 and "Checkout" in member[1]
    assert guest[:2] == (1, "") and "U0VENDOR may not see it" in guest[2] and guest[2].count("\n") == 1
    assert invited[0] == 0 and "Checkout" in invited[1]
    assert unknown[:2] == (1, "") and "U0NOBODY may not see it" in unknown[2]
