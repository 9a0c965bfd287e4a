"""Dashboard sessions signed out before their cookie expired.

The session cookie is signed and holds who is signed in, so the bot keeps no row per session. A
sign-out must still end the session everywhere, not only in the browser that clicked it: a copy
of the cookie (another tab's profile, a shared machine, a stolen cookie) would otherwise work
until it expires. So a sign-out leaves the session's id here until that expiry, and every page
looks it up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class EndedSession(SQLModel, table=True):
    __tablename__ = "dashboard_sessions_ended"

    session_id: str = Field(primary_key=True, max_length=64)
    # When the cookie expires anyway: the row is useless after it, and is deleted by a later sign-out.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
