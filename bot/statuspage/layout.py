"""When the page was first served as it is configured: the oldest date the page can tell.

A page with no public incident and no probe has nothing in its rows to date it, yet a poller needs a real
`updated_at` and `Last-Modified` (Statuspage's own `summary.json` always says when its page last changed,
settings included). The date is the first time any replica built the page with this title, these
components (and their public ids) and this address, stored once per layout: every replica and every
restart tell the same, which a process's start time would not, and a new title or component dates the
page from the deploy that brought it. Going back to a layout served before takes its first date again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import StatusPageConfig
from bot.db import upsert_insert
from bot.statuspage.models import PageLayout


def digest(config: StatusPageConfig, *, public_url: str | None) -> str:
    """What of the configuration shows on the page; not the services behind a component, nor Statuspage."""
    shown = {
        "title": config.title,
        "components": [[name, config.id_name(name)] for name in config.components],
        "url": public_url or "",
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


async def first_built(session: AsyncSession, *, layout: str, now: datetime) -> datetime:
    """The stored first build of `layout`, stored now if there is none (the first replica's `now` wins)."""
    insert = upsert_insert(session, PageLayout).values(digest=layout, first_built_at=now)
    await session.exec(insert.on_conflict_do_nothing(index_elements=["digest"]))
    await session.commit()
    found = (await session.exec(select(PageLayout).where(col(PageLayout.digest) == layout))).one()
    return utc(found.first_built_at)
