"""`python -m bot` as an operator runs it: real subprocesses, real exit codes and messages."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.db import sqlite_unopenable
from tests.fakes.slack_api import FakeSlack
from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "DATABASE_URL", "PORT"))}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "PLAYBOOKS_DIR": str(ROOT / "playbooks")})
    # The code under test is this checkout's, not whatever `bot` the interpreter has installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # the tests assert on the exit code
    )


def test_serving_without_a_token_stops_with_one_line(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: SLACK_BOT_TOKEN: required to serve (the bot token, xoxb-…)"
    ]


def test_malformed_config_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bot.yml").write_text("escalation:\n  levels:\n    - {name: L1, after: soon, notify: [U0A1]}\n")
    result = _run(tmp_path, "check")
    assert result.returncode == 2
    assert "bot.yml: escalation.levels.0.after: invalid duration 'soon'" in result.stderr


def test_check_warns_of_a_playbook_keyword_that_matches_every_title(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "any.yml").write_text(
        "id: any\ntitle: Any\nmatch: {keywords: [the]}\nsteps:\n  - {id: s, title: S, instructions: x}\n"
    )
    result = _run(tmp_path, "check", PLAYBOOKS_DIR=str(playbooks))
    assert result.returncode == 0, result.stdout + result.stderr  # it loads: a bot running with it still starts
    assert f"warning: {playbooks}/any.yml: match.keywords: keyword 'the' is in almost every incident title" in (
        result.stdout
    )


def test_check_accepts_the_example(tmp_path: Path) -> None:
    result = _run(tmp_path, "check", BOT_CONFIG=str(ROOT / "bot.example.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 services" in result.stdout
    assert "can be removed" not in result.stdout  # nothing in the example that a date can make stale


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    result = _run(tmp_path, "check", BOT_CONFIG=str(tmp_path / "missing.yml"))
    assert result.returncode == 2
    assert "BOT_CONFIG" in result.stderr and "missing.yml" in result.stderr


async def test_http_mode_serves_slack_and_health_then_stops_cleanly(tmp_path: Path) -> None:
    fake = FakeSlack()
    await fake.start()
    port = free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=fake.bot_token,
        SLACK_SIGNING_SECRET="s3cret",
        SLACK_API_URL=fake.url,
        PORT=str(port),
        LOG_FORMAT="json",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                try:
                    health = await client.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the bot did not start listening")
            assert health.status_code == 200
            assert health.headers["content-type"].startswith("application/health+json")
            assert health.json()["status"] == "pass"
            unsigned = await client.post(f"http://127.0.0.1:{port}/slack/events", content=b"command=/incident")
            assert unsigned.status_code == 401
        assert (tmp_path / "bot.db").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        await fake.stop()
    assert process.returncode == 0, stderr.decode()
    assert b"xoxb-" not in stderr  # tokens never reach the log


# --- papercuts a newcomer met (issue 18) --------------------------------------------------------------


def test_check_from_the_wrong_directory_warns_loudly(tmp_path: Path) -> None:
    """No bot.yml and no playbooks here: `check` used to say just "ok" with 0 services and 0 playbooks."""
    result = _run(tmp_path, "check", PLAYBOOKS_DIR="playbooks")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "WARNING: 0 services and 0 playbooks" in out and "looks like the wrong directory" in out
    assert f"bot.yml read: {tmp_path / 'bot.yml'} (not found: the defaults were used)" in out
    assert out.strip().splitlines()[-1] == "ok (but there is nothing here to check)"


def test_check_in_the_right_directory_has_no_banner(tmp_path: Path) -> None:
    result = _run(tmp_path, "check", BOT_CONFIG=str(ROOT / "bot.example.yml"))
    assert "wrong directory" not in result.stdout and result.stdout.strip().splitlines()[-1] == "ok"


@pytest.mark.parametrize(("name", "value"), [("LOG_LEVEL", "verbose"), ("LOG_FORMAT", "xml")])
def test_a_bad_log_setting_is_one_line_not_a_traceback(tmp_path: Path, name: str, value: str) -> None:
    result = _run(tmp_path, "check", **{name: value})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"configuration error: {name}: '{value}' is not a log")


@pytest.mark.parametrize("command", [("migrate",), ("postmortem", "INC-1")])
def test_a_database_that_cannot_be_opened_is_one_line_not_a_traceback(tmp_path: Path, command: tuple[str]) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'bot.db'}"
    result = _run(tmp_path, *command, DATABASE_URL=url)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no-such-dir" in line and ("unable to open database file" in line or "there is no database" in line), line


@pytest.mark.parametrize("command", [("migrate",), ("postmortem", "INC-1")])
def test_a_directory_named_as_the_database_is_one_line(tmp_path: Path, command: tuple[str]) -> None:
    (tmp_path / "bot.db").mkdir()
    result = _run(tmp_path, *command, DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}")
    assert result.returncode == 1
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    assert result.stderr.strip() == f"database error: cannot use DATABASE_URL={url}: unable to open database file"


def test_the_sqlite_preflight_finds_what_aiosqlite_would_fail_on_and_creates_nothing(tmp_path: Path) -> None:
    """aiosqlite never sees these: failing to connect, its thread could print a traceback after the loop closed."""
    assert sqlite_unopenable(f"sqlite:///{tmp_path / 'new.db'}") is None
    assert not (tmp_path / "new.db").exists()
    missing_dir = sqlite_unopenable(f"sqlite:///{tmp_path / 'no-such-dir' / 'bot.db'}")
    assert missing_dir is not None and missing_dir.endswith("no-such-dir/bot.db: unable to open database file")
    assert not (tmp_path / "no-such-dir").exists()
    (tmp_path / "dir.db").mkdir()
    assert sqlite_unopenable(f"sqlite:///{tmp_path / 'dir.db'}") is not None
    (tmp_path / "good.db").write_bytes(b"")
    assert sqlite_unopenable(f"sqlite:///{tmp_path / 'good.db'}") is None
    assert sqlite_unopenable("sqlite://") is None and sqlite_unopenable("postgresql+psycopg://h/db") is None


def test_an_unreachable_postgresql_is_one_line_without_its_password(tmp_path: Path) -> None:
    closed = free_port()
    result = _run(tmp_path, "migrate", DATABASE_URL=f"postgresql+psycopg://bot:s3cret@127.0.0.1:{closed}/bot")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"database error: cannot use DATABASE_URL=postgresql+psycopg://bot:***@127.0.0.1:{closed}/bot: "
    )
    assert "s3cret" not in line


def test_postmortem_on_a_mistyped_sqlite_path_creates_no_database(tmp_path: Path) -> None:
    result = _run(tmp_path, "postmortem", "INC-1", DATABASE_URL="sqlite:///nodb.db")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: there is no database at nodb.db (check DATABASE_URL)"
    assert not (tmp_path / "nodb.db").exists()


def test_a_port_in_use_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", PORT=str(port), HOST="127.0.0.1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"configuration error: PORT: {port} is already in use on 127.0.0.1 (is the bot already running?): "
        "stop that process or set PORT to a free port"
    ]
    assert not (tmp_path / "bot.db").exists()  # refused before anything started (no database, no pages)


def test_scripts_setup_installs_only_when_pyproject_changed(tmp_path: Path) -> None:
    """`scripts/run` reinstalled on every start (~10 s, and the package index needed)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup").write_text((ROOT / "scripts" / "setup").read_text())
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    log = tmp_path / "pip.log"
    python = venv_bin / "python"  # a stand-in that records pip and runs everything else for real
    python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> {log}; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)

    def setup(*args: str) -> int:
        subprocess.run(["bash", "scripts/setup", *args], cwd=tmp_path, check=True, timeout=60)
        return len(log.read_text().splitlines()) if log.exists() else 0

    assert setup() == 2  # pip upgrade + install
    assert setup() == 2  # nothing changed: nothing installed
    assert setup("--dev") == 4  # the dev tools were never installed
    assert setup() == 4 and setup("--dev") == 4
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert setup() == 6
    assert "install --quiet -e ." in log.read_text().splitlines()[-1]
