"""`python -m bot postmortem INC-7 [--format markdown|html] [-o FILE]`."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest

from bot.config import BotConfig
from bot.db import Database
from bot.exceptions import UsageError
from bot.postmortem.cli import parse_ref, run_cli
from bot.settings import Settings
from tests.postmortem.seed import seed_full, seed_unacknowledged

ROOT = Path(__file__).resolve().parents[2]


def settings_for(database_url: str, templates_dir: Path | None = None) -> Settings:
    config = BotConfig.model_validate({"postmortem": {"templates_dir": templates_dir}} if templates_dir else {})
    return Settings(database_url=database_url, config=config, _env_file=None)  # type: ignore[call-arg]


async def run(
    database_url: str,
    incident: str,
    fmt: str = "markdown",
    output: Path | None = None,
    templates_dir: Path | None = None,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_cli(
        settings_for(database_url, templates_dir), incident=incident, fmt=fmt, output=output, stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("ref", ["INC-7", "inc-7", "7", "Inc7", "#7"])
def test_incident_references(ref: str) -> None:
    assert parse_ref(ref) == 7


@pytest.mark.parametrize("ref", ["INC-", "seven", "INC-0", "7a", ""])
def test_bad_references(ref: str) -> None:
    with pytest.raises(UsageError):
        parse_ref(ref)


async def test_markdown_to_stdout(db: Database, database_url: str) -> None:
    await seed_full(db)
    code, out, err = await run(database_url, "inc-7")
    # No token: the draft keeps the people's IDs, and says why.
    assert (code, err) == (0, "note: SLACK_BOT_TOKEN is not set, so people are shown by their Slack IDs\n")
    assert out.startswith(r"# Post-mortem INC-7: Checkout \| payments API down")
    assert "- Time to acknowledge: 4m 00s" in out


async def test_html_to_a_file(db: Database, database_url: str, tmp_path: Path) -> None:
    await seed_full(db)
    target = tmp_path / "reports" / "inc-7.html"
    code, out, err = await run(database_url, "7", fmt="html", output=target)
    assert code == 0 and out == ""
    assert f"wrote the INC-7 post-mortem (html, 26 timeline events) to {target}" in err
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<h1>Post-mortem INC-7: Checkout | payments API down</h1>" in page


async def test_markdown_to_a_file(db: Database, database_url: str, tmp_path: Path) -> None:
    number = await seed_unacknowledged(db)
    target = tmp_path / "pm.md"
    code, _, _ = await run(database_url, f"INC-{number}", output=target)
    assert code == 0
    assert "- Time to acknowledge: not acknowledged" in target.read_text(encoding="utf-8")


async def test_unknown_incident_is_exit_code_1(db: Database, database_url: str) -> None:
    await seed_unacknowledged(db)
    code, out, err = await run(database_url, "INC-99")
    assert code == 1 and out == ""
    assert err.startswith("error: INC-99 does not exist in ")
    assert "check DATABASE_URL" in err


async def test_bad_arguments_are_exit_code_2(database_url: str) -> None:
    code, _, err = await run(database_url, "yesterday")
    assert code == 2 and "'yesterday' is not an incident" in err
    code, _, err = await run(database_url, "INC-7", fmt="pdf")
    assert code == 2 and "use markdown or html" in err


async def test_templates_dir_from_bot_yml(db: Database, database_url: str, tmp_path: Path) -> None:
    await seed_full(db)
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "postmortem.md.j2").write_text("Custom {{ pm.ref }}: {{ pm.title|t }}\n", encoding="utf-8")
    code, out, _ = await run(database_url, "INC-7", templates_dir=folder)
    assert (code, out) == (0, "Custom INC-7: Checkout \\| payments API down\n")
    code, _, err = await run(database_url, "INC-7", templates_dir=tmp_path / "nope")
    assert code == 1 and "postmortem.templates_dir" in err


async def test_unwritable_output_is_reported(db: Database, database_url: str, tmp_path: Path) -> None:
    await seed_full(db)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = await run(database_url, "INC-7", output=blocker / "pm.md")
    assert code == 1 and err.splitlines()[-1].startswith(f"error: cannot write {blocker / 'pm.md'}")


async def test_python_dash_m_bot_postmortem(db: Database, database_url: str, tmp_path: Path) -> None:
    """The real entry point, as an operator runs it."""
    await seed_full(db)
    # In an empty directory: no bot.yml, no .env; the database comes from DATABASE_URL only.
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env.pop("BOT_CONFIG", None)

    async def python_m_bot(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = await python_m_bot("postmortem", "INC-7", "--format", "markdown")
    assert code == 0, err
    assert out.startswith("# Post-mortem INC-7:")
    code, out, err = await python_m_bot("postmortem", "INC-99")
    assert code == 1 and out == ""
    assert "INC-99 does not exist" in err
