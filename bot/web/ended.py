"""Sessions signed out before their cookie expired: recorded at sign-out, looked up on every page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.db import Database
from bot.web.models import EndedSession

_ENDED = EndedSession.metadata.tables["dashboard_sessions_ended"]


async def is_ended(db: Database, *, session_id: str) -> bool:
    async with db.session() as session:
        found = await session.exec(select(EndedSession.session_id).where(col(EndedSession.session_id) == session_id))
        return found.first() is not None


async def end(db: Database, *, session_id: str, expires_at: datetime, now: datetime) -> None:
    """Refuse this session from now on, wherever its cookie is; rows whose cookie expired anyway go."""
    try:
        async with db.session() as session:
            await session.exec(delete(_ENDED).where(_ENDED.c.expires_at <= now))
            await session.exec(insert(_ENDED).values(session_id=session_id, expires_at=expires_at))
            await session.commit()
    except IntegrityError:
        pass  # signed out twice (two tabs): it is ended already (the clean-up waits for the next sign-out)
