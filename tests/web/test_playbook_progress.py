"""The incident page's "Playbook progress" shows the checklist: which steps are done, skipped and still to
do, and the next one. It listed only the steps someone had closed, so at the start of an incident it said
nothing past "started", and never what was left."""

from __future__ import annotations

import re

from bot.slack.adapters.playbooks import PlaybookActionId
from tests.harness import BotHarness
from tests.playbooks.conftest import click
from tests.web.conftest import Browser


def _progress(html: str) -> str:
    start = html.index('id="playbook"')
    section = html[start : html.index("</section>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", section))  # the text as a browser joins it


async def test_the_checklist_says_what_is_done_and_what_is_left(site: BotHarness, alice: Browser) -> None:
    incident = await site.declare("P1 service:gateway Gateway down")
    await click(site, await site.incident(1), PlaybookActionId.DONE, user="U0BOB")
    await click(site, await site.incident(1), PlaybookActionId.SKIP, user="U0CAROL")

    text = _progress((await alice.get(f"/incidents/{incident.ref}")).text)
    assert "Service down: 1 of 6 steps done, 1 skipped; next: 3. Read the logs." in text, text
    assert "done 1. Check the health endpoints by @bob at " in text, text
    assert "skipped 2. Look at what changed by @carol at " in text, text
    assert "to do 3. Read the logs to do 4. Restart the service (optional) to do" in text, text
    assert "No playbook was run" not in text


async def test_without_a_playbook_the_page_says_none_ran(site: BotHarness, alice: Browser) -> None:
    incident = await site.declare("P3 Typo on the pricing page")
    text = _progress((await alice.get(f"/incidents/{incident.ref}")).text)
    assert "No playbook was run" in text and "steps done" not in text, text
