"""`python -m bot` as a real process (HTTP mode) for tests that kill it: what a deploy runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]


class PortTaken(Exception):
    """The port picked for the bot was bound by something else before the bot started."""


class BotProcess:
    def __init__(self, *, fake: FakeSlack, database_url: str, directory: Path, bot_yml: str) -> None:
        (directory / "bot.yml").write_text(bot_yml)
        self.log_path = directory / "bot.log"
        self.directory = directory
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "BOT_CONFIG"))},
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.url,
            "DATABASE_URL": database_url,
            "BOT_CONFIG": str(directory / "bot.yml"),
            "PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        self.command = [sys.executable, "-m", "bot"]
        self.process: subprocess.Popen[bytes] | None = None
        self._new_port()

    def _new_port(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env["PORT"] = str(self.port)

    async def start(self, *, within: float = 40.0) -> float:
        """Exec `command` and wait for /health 200; returns the seconds that took. Can be called again.

        A port picked free can be taken before the bot binds it (the SQLite and PostgreSQL suites run side
        by side and open thousands of connections): then the bot is started again on another port."""
        for _ in range(3):
            try:
                return await self._start(within=within)
            except PortTaken:
                self._new_port()
        return await self._start(within=within)

    async def _start(self, *, within: float) -> float:
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 (exec is quick)
                self.command, cwd=self.directory, env=self.env, stdout=log, stderr=log
            )
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() - started < within:
                if self.process.poll() is not None:
                    if self.process.returncode == 2 and "is already in use" in self.log_tail(3):
                        raise PortTaken(self.port)
                    raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"/health not 200 within {within}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
