"""The Markdown draft: golden file, escaping, missing metrics, user templates.

Regenerate the golden files after an intended change with
    UPDATE_GOLDEN=1 .venv/bin/pytest tests/postmortem
and review the diff before committing it.
"""

from __future__ import annotations

import difflib
import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.db import Database
from bot.exceptions import ConfigError, NotFound, UsageError
from bot.postmortem import service
from tests.postmortem.seed import T0, seed_full, seed_unacknowledged

GOLDEN = Path(__file__).parent / "golden"
NOW = T0 + timedelta(hours=2)


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with UPDATE_GOLDEN=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(
            f"the rendered post-mortem differs from golden/{name} (UPDATE_GOLDEN=1 regenerates it):\n{diff}",
            pytrace=False,
        )


async def markdown(db: Database, number: int, **kw: object) -> str:
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=NOW)
    return service.render(data, fmt="markdown", **kw)  # type: ignore[arg-type]


async def test_full_incident_matches_golden_file(db: Database) -> None:
    number = await seed_full(db)
    assert_golden("full_incident.md", await markdown(db, number))


async def test_unacknowledged_incident_matches_golden_file(db: Database) -> None:
    number = await seed_unacknowledged(db)
    assert_golden("unacknowledged_incident.md", await markdown(db, number))


async def test_every_section_is_present_in_order(db: Database) -> None:
    text = await markdown(db, await seed_full(db))
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Status",
        "## Summary",
        "## Impact",
        "## Detection",
        "## Key metrics",
        "## Responders and roles",
        "## Escalations",
        "## Timeline of key events",
        "## Actions taken",
        "## Playbook progress",
        "## Root cause, trigger and resolution",
        "## Action items",
        "## Lessons learned",
        "## Full timeline",
    ]


async def test_metrics_say_not_acknowledged_never_zero(db: Database) -> None:
    text = await markdown(db, await seed_unacknowledged(db))
    assert "| First acknowledged | not acknowledged | not acknowledged | — |" in text
    assert "- Time to acknowledge: not acknowledged" in text
    assert "- Time to mitigate (first `monitoring` status): not mitigated" in text
    assert "- Time to resolve: not resolved yet" in text
    assert "1 page sent; not acknowledged." in text
    metrics = text.split("## Key metrics")[1].split("## Responders")[0]
    # Only the declaration itself is "0s" after the declaration, and the time to detect, which says why.
    assert "- Time to detect (impact start to declaration): 0s (the impact start is taken as the declaration" in metrics
    assert metrics.count("0s") == 2


def _table_rows(text: str, section: str) -> list[list[str]]:
    body = text.split(f"## {section}")[1].split("\n## ", maxsplit=1)[0]
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            # Split on unescaped pipes only, as a Markdown renderer does.
            cells, cell, escaped = [], "", False
            for char in line.strip()[1:-1]:
                if char == "|" and not escaped:
                    cells.append(cell.strip())
                    cell = ""
                else:
                    cell += char
                escaped = char == "\\" and not escaped
            cells.append(cell.strip())
            rows.append(cells)
    return rows


async def test_user_text_cannot_break_tables_or_headings(db: Database) -> None:
    number = await seed_full(
        db,
        title="# 1. DB | [down](http://evil) <b>x</b>",
        note="| forged | row |\n## Forged heading\n> quote",
    )
    text = await markdown(db, number)
    first = text.splitlines()[0]
    assert first == r"# Post-mortem INC-7: \# 1. DB \| \[down\](http://evil) \<b\>x\</b\>"
    # Every row of the key timeline still has exactly four cells.
    rows = _table_rows(text, "Timeline of key events")
    assert rows and all(len(row) == 4 for row in rows)
    full = _table_rows(text, "Full timeline")
    assert len(full) == 1 + 26 and all(len(row) == 5 for row in full)
    # The note with a newline and a heading marker stays on its list line.
    assert not any(line.startswith("## Forged") for line in text.splitlines())
    assert r"- 2026-11-20 09:10:00, @U0BOB: \| forged \| row \| ## Forged heading \> quote" in text


async def test_slack_markup_in_text_is_shown_as_names(db: Database) -> None:
    number = await seed_full(db, note="ping <@U0BOB|bob> in <#C0OPS|ops>, see <https://status.example.com|status>")
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=NOW)
    data.user_names = {"U0BOB": "bob.smith", "U0CAROL": "carol"}
    text = service.render(data)
    assert "ping @bob.smith in #ops, see status (https://status.example.com)" in text
    assert "- Incident commander: @carol" in text


async def test_open_incident_says_ongoing(db: Database) -> None:
    text = await markdown(db, await seed_unacknowledged(db))
    assert "| End | ongoing |" in text
    assert "| Duration | ongoing, 2h 00m so far |" in text
    assert "it is still open after 2h 00m." in text


async def test_user_template_overrides_one_section(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "postmortem.md.j2").write_text(
        '{% extends "builtin/postmortem.md.j2" %}\n'
        "{% block lessons %}\n## Retrospective\n\nOwner: {{ pm.commander|user }}\n{% endblock %}\n",
        encoding="utf-8",
    )
    text = await markdown(db, await seed_full(db), templates_dir=folder)
    assert "## Retrospective\n\nOwner: @U0CAROL" in text
    assert "## Lessons learned" not in text
    assert "- Time to acknowledge: 4m 00s" in text


async def test_template_errors_name_the_file_and_line(db: Database, tmp_path: Path) -> None:
    number = await seed_full(db)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "postmortem.md.j2").write_text("# {{ pm.ref }}\n{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"postmortem.md.j2, line 2"):
        await markdown(db, number, templates_dir=broken)

    undefined = tmp_path / "undefined"
    undefined.mkdir()
    (undefined / "postmortem.md.j2").write_text("# {{ pm.ref }}\n\n{{ pm.no_such_field }}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"postmortem.md.j2, line 3.*no_such_field"):
        await markdown(db, number, templates_dir=undefined)

    with pytest.raises(ConfigError, match="is not a directory"):
        await markdown(db, number, templates_dir=tmp_path / "missing")


async def test_unknown_incident_and_format(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(NotFound, match="no incident INC-42 that you can see"):
            await service.build(session, incident_id=42)
    number = await seed_unacknowledged(db)
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=NOW)
    with pytest.raises(UsageError, match="use markdown or html"):
        service.render(data, fmt="pdf")
    assert service.render(data, fmt="MD") == service.render(data, fmt="markdown")
    assert service.filename(data, fmt="html") == f"INC-{number}-postmortem.html"
