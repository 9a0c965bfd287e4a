"""`python -m bot check` validates the user's post-mortem templates."""

from __future__ import annotations

from pathlib import Path

from bot.config import BotConfig
from bot.postmortem import check, service
from bot.settings import Settings


def settings(folder: Path | None) -> Settings:
    config = BotConfig.model_validate({"postmortem": {"templates_dir": folder}} if folder else {})
    return Settings(config=config, _env_file=None)  # type: ignore[call-arg]


def test_no_folder_is_fine() -> None:
    assert check.check(settings(None)) == ([], [])


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    errors, _ = check.check(settings(tmp_path / "nope"))
    assert errors == [f"postmortem.templates_dir: {tmp_path / 'nope'} is not a directory"]


def test_empty_folder_is_a_warning(tmp_path: Path) -> None:
    errors, warnings = check.check(settings(tmp_path))
    assert errors == [] and "the built-in templates are used" in warnings[0]


def test_broken_and_good_templates(tmp_path: Path) -> None:
    (tmp_path / "postmortem.md.j2").write_text("# {{ pm.ref }}\n{{ pm.owner }}\n", encoding="utf-8")
    (tmp_path / "postmortem.html.j2").write_text(
        '{% extends "builtin/postmortem.html.j2" %}{% block lessons %}<p>{{ pm.title }}</p>{% endblock %}',
        encoding="utf-8",
    )
    errors, _ = check.check(settings(tmp_path))
    assert len(errors) == 1
    assert "postmortem.md.j2, line 2" in errors[0] and "owner" in errors[0]


def test_the_sample_renders_with_the_builtin_templates() -> None:
    for fmt in service.FORMATS:
        assert "INC-1" in service.render(check.sample(), fmt=fmt)
