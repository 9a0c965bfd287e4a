"""`python -m bot` as an operator runs it: real subprocesses, real exit codes and messages."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

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


def test_check_accepts_the_example(tmp_path: Path) -> None:
    result = _run(tmp_path, "check", BOT_CONFIG=str(ROOT / "bot.example.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 services" in result.stdout


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
