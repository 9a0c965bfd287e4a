"""Reading and saving the human-written post-mortem sections.

A save names the text the editor started from (`expected`): when someone else changed the
section meanwhile, the save is refused with `EditConflict` instead of silently overwriting a
colleague's root-cause analysis. Every save is a timeline event with who made it, in the same
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import InvalidState, UsageError
from bot.incidents.grammar import clean
from bot.incidents.models import Incident
from bot.postmortem.data import SECTIONS, no_sections
from bot.postmortem.models import PostmortemSection
from bot.timeline import events
from bot.timeline import service as timeline

MAX_CHARS = 20_000


class EditConflict(InvalidState):
    """The section changed since the editor loaded it."""

    def __init__(self, message: str, *, current: str, by: str) -> None:
        super().__init__(message)
        self.current = current
        self.by = by


@dataclass(frozen=True)
class Written:
    section: str
    text: str
    updated_by: str
    updated_at: datetime


async def load(session: AsyncSession, *, incident_id: int) -> dict[str, Written]:
    rows = await session.exec(select(PostmortemSection).where(PostmortemSection.incident_id == incident_id))
    return {
        row.section: Written(row.section, row.text, row.updated_by, row.updated_at)
        for row in rows.all()
        if row.section in SECTIONS
    }


async def texts(session: AsyncSession, *, incident_id: int) -> dict[str, str]:
    """Every section's text ("" when nobody wrote it), for the templates."""
    out = no_sections()
    out.update({key: w.text for key, w in (await load(session, incident_id=incident_id)).items()})
    return out


def check_section(section: str) -> str:
    if section not in SECTIONS:
        raise UsageError(f"unknown post-mortem section {section!r}", usage=", ".join(SECTIONS))
    return section


def _normal(text: str) -> str:
    """A section as stored: no control characters (PostgreSQL refuses NUL), Unix line ends, no edge blanks."""
    return clean(text).replace("\r\n", "\n").strip()


async def save(
    session: AsyncSession,
    *,
    incident: Incident,
    section: str,
    text: str,
    expected: str,
    actor: str,
    now: datetime,
    via: str,
) -> bool:
    """Store one section; False when the text did not change. Raises EditConflict when the
    stored text is no longer `expected` (someone saved in between)."""
    assert incident.id is not None
    check_section(section)
    text = _normal(text)
    if len(text) > MAX_CHARS:
        raise UsageError(f"{SECTIONS[section]} is {len(text)} characters; the limit is {MAX_CHARS}.")
    row = (
        await session.exec(
            select(PostmortemSection).where(
                PostmortemSection.incident_id == incident.id, col(PostmortemSection.section) == section
            )
        )
    ).first()
    current = row.text if row is not None else ""
    if current == text:
        return False
    if current != _normal(expected):
        raise EditConflict(
            f"{SECTIONS[section]} was changed by <@{row.updated_by if row else actor}> while you were editing it.",
            current=current,
            by=row.updated_by if row else "",
        )
    if row is None:
        row = PostmortemSection(incident_id=incident.id, section=section, text=text, updated_by=actor, updated_at=now)
    else:
        row.text, row.updated_by, row.updated_at = text, actor, now
    session.add(row)
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=f"Post-mortem section “{SECTIONS[section]}” {'cleared' if not text else 'edited'} ({via})",
        payload=events.PostmortemEvent(section=section, chars=len(text), via=via, finished=False),
    )
    try:
        await session.commit()
    except IntegrityError as exc:  # two first saves of the same section at once
        await session.rollback()
        raise EditConflict(
            f"{SECTIONS[section]} was saved by someone else at the same moment.", current="", by=""
        ) from exc
    return True
