"""`python -m bot demo` plays a whole incident to the end, with whatever features this build wires."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import wiring
from bot.alerts import setup as alerts_setup
from bot.config import BotConfig
from bot.demo.run import run_demo
from bot.demo.slack_stand_in import SlackStandIn
from bot.demo.transcript import Transcript, render_message
from bot.settings import Settings
from bot.slack import listeners

ROOT = Path(__file__).resolve().parents[2]


def user_settings(tmp_path: Path) -> Settings:
    return Settings.load(
        _env_file=None,
        config=BotConfig(),
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        playbooks_dir=ROOT / "playbooks",
    )


async def play(tmp_path: Path, output: Path, escalation_after: tuple[int, int, int]) -> str:
    """Run the demo at full speed; it must play to the end. Returns the transcript."""
    out = io.StringIO()
    code = await run_demo(user_settings(tmp_path), output=output, pace=0, stream=out, escalation_after=escalation_after)
    assert code == 0, out.getvalue()
    return out.getvalue()


async def test_the_demo_runs_to_the_end(tmp_path: Path) -> None:
    output = tmp_path / "pm" / "INC-1.md"
    transcript = await play(tmp_path, output, (0, 2, 4))
    # the alert, declared from its button, with the real app's messages
    assert "#alerts · incident-bot: *🔥 FIRING (1): ServiceDown" in transcript
    assert "#alerts · alice: clicks [Declare incident]" in transcript
    assert "#incidents · incident-bot: 🔴 P1 (critical) *INC-1" in transcript
    assert "[Resolve INC-1]" in transcript
    assert "alice resolved INC-1" in transcript
    # ...and the post-mortem written where asked
    document = output.read_text(encoding="utf-8")
    assert "INC-1" in document and "ServiceDown" in document
    assert "Done. The post-mortem draft is in" in transcript
    for who, level in (("bob", 1), ("dana", 2), ("chris", 3)):
        assert f"DM @{who} · incident-bot" in transcript
        assert f"level {level}" in transcript
    assert "DM @bob · bob: clicks [Acknowledge]" in transcript
    assert "🔴 *gateway* failing" in transcript
    assert "alice: clicks [Confirm]" in transcript
    assert "🟢 *gateway* healthy" in transcript
    assert "Playbook: Service down" in transcript
    assert "bob: clicks [Done]" in transcript
    assert "post-mortem draft" in transcript
    assert "Root cause: connection pool leak" in document
    # Its alert began two minutes before it fired, whatever day the demo runs (a fixed date made it days).
    assert re.search(r"^\| Declared \| .* UTC, 2m \d\ds after the impact started \|$", document, re.MULTILINE)
    resolved_after = re.search(r"resolved by @alice (.+?) later\.", document)
    assert resolved_after and re.fullmatch(r"(\d+m )?\d+s", resolved_after.group(1))
    assert "(skipped:" not in transcript  # everything wired ran


async def test_the_demo_degrades_when_features_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build with only incidents and alerts still plays to the end, says what it skipped, and writes a file."""
    monkeypatch.setattr(wiring, "domains", lambda deps, ports: alerts_setup.setup(deps))
    keep = [m for m in listeners.MODULES if m.__name__.rsplit(".", 1)[-1] in {"alerts", "incident", "replay"}]
    monkeypatch.setattr(listeners, "MODULES", keep)
    output = tmp_path / "pm.md"
    transcript = await play(tmp_path, output, (0, 1, 2))
    assert "(skipped: paging (escalation is not installed in this build))" in transcript
    assert "(skipped: /status and /restart (ops is not installed in this build))" in transcript
    assert "(skipped: playbook steps (playbooks are not installed in this build))" in transcript
    assert "INC-1" in output.read_text(encoding="utf-8")


def test_mrkdwn_is_shown_as_people_read_it() -> None:
    slack = SlackStandIn()
    transcript = Transcript(io.StringIO(), slack.name)
    text = "<@U0BOB> see <#C0ALERTS> at <!date^1795000000^{time}|09:00 UTC>, <https://x.example/a|the graph> &lt;b&gt;"
    assert transcript.plain(text) == "@bob see #alerts at 09:00 UTC, the graph <b>"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "body"}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a"}],
        },
    ]
    assert render_message("fallback", blocks) == "*Title*\nbody\n[Go]"


@pytest.mark.slow
def test_python_m_bot_demo(tmp_path: Path) -> None:
    """What a newcomer types right after installing; with --keep, then the README's postmortem command."""
    output = tmp_path / "demo-postmortem.md"
    kept = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "-o", str(output), "--keep", str(kept)],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=180,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "BOT_CONFIG": str(ROOT / "bot.example.yml"),
        },
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done. The post-mortem draft is in" in result.stdout
    assert output.is_file()
    assert kept.is_file() and f"kept in {kept}" in result.stdout
    html = tmp_path / "inc-1.html"
    again = subprocess.run(
        [sys.executable, "-m", "bot", "postmortem", "INC-1", "--format", "html", "-o", str(html)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{kept}",
        },
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "INC-1" in html.read_text(encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--keep", str(kept)],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert refused.returncode == 2 and "exists already" in refused.stderr  # never overwrites a kept database
