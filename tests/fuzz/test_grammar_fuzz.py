"""Property: whatever is typed after `/incident`, the parser returns a command or raises UsageError.

Anything else (ValueError, IndexError, ...) would reach the listener as a crash at 3 a.m.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.config import Severity
from bot.exceptions import UsageError
from bot.incidents import grammar
from tests.fuzz.strategies import SUBCOMMANDS, command_text

KNOWN = [
    grammar.Known(),
    grammar.Known(services=frozenset({"api", "web"}), playbooks=frozenset({"service-down", "database"})),
]
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _check(text: str, known: grammar.Known) -> None:
    try:
        cmd = grammar.parse(text, known=known)
    except UsageError as exc:
        assert str(exc).strip(), f"empty error message for {text!r}"
        assert exc.usage, f"no usage for {text!r}"
        return
    assert cmd.name in grammar.USAGE, cmd
    assert cmd.incident is None or cmd.incident >= 0
    if isinstance(cmd, grammar.Declare):
        assert len(cmd.title) <= grammar.MAX_TITLE
        assert cmd.severity is None or isinstance(cmd.severity, Severity)
        assert cmd.title or not (cmd.severity or cmd.service or cmd.playbook)
        if known.services and cmd.service:
            assert cmd.service in known.services
    elif isinstance(cmd, grammar.Text | grammar.Update):
        assert len(getattr(cmd, "text", getattr(cmd, "message", ""))) <= grammar.MAX_TEXT
    elif isinstance(cmd, grammar.Stats):
        assert 1 <= cmd.days <= 3650
    elif isinstance(cmd, grammar.RoleCmd):
        assert cmd.user[:1] in {"U", "W"}


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
@FUZZ
@given(data=st.data())
def test_every_subcommand_parses_or_says_how_to_fix_it(subcommand: str, data: st.DataObject) -> None:
    text = data.draw(command_text(subcommand), label="text")
    known = data.draw(st.sampled_from(KNOWN), label="known")
    _check(text, known)


@FUZZ
@given(text=command_text(), known=st.sampled_from(KNOWN))
@example(text="INC-1 stats 9999999999999999999999", known=KNOWN[0])
@example(text="", known=KNOWN[0])
@example(text="INC-7", known=KNOWN[0])
@example(text="\u200b", known=KNOWN[0])
def test_any_head_word(text: str, known: grammar.Known) -> None:
    _check(text, known)


@FUZZ
@given(text=st.text(max_size=200), known=st.sampled_from(KNOWN))
def test_raw_unicode(text: str, known: grammar.Known) -> None:
    _check(text, known)


@FUZZ
@given(
    severity=st.sampled_from(["P1", "p2", "SEV3", "sev-4", "critical"]),
    words=st.lists(
        st.text(
            alphabet=st.characters(exclude_categories=("Cs", "Z", "Cc"), exclude_characters=":"),
            min_size=1,
            max_size=12,
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_declare_keeps_every_title_word_after_the_severity(severity: str, words: list[str]) -> None:
    """The forgiving parser must not eat title words that only look like options (`p1`, `low`, `sev2`); a
    second severity straight after the first (`P1 SEV0 …`) is refused, not read as the title's start."""
    words = [w for w in words if w.split() == [w]]
    title = " ".join(words)
    try:
        cmd = grammar.parse(f"declare {severity} {title}")
    except UsageError as exc:
        second = f"Give one severity, P1 (critical) to P4 (low); got {severity} and {words[0] if words else ''}"
        assert len(title) > grammar.MAX_TITLE or not words or str(exc).startswith(second)
        return
    assert isinstance(cmd, grammar.Declare)
    assert cmd.severity == grammar.parse_severity(severity)
    assert cmd.title == title


# Words a title starts with that look like options to a careless reader; none is one.
TITLE_STARTS = ["High", "low", "Medium", "S3", "s1", "P2P", "SEV", "Sev-review", "p3p", "Privately", "INC-7"]
# Title words after the first: severities, `private` and numbers included, never taken out.
TITLE_WORDS = ["P1", "p3:", "sev", "2", "sev-4", "critical", "private", "high", "S3", "P5", "P0", "bucket", "down"]


@FUZZ
@given(
    options=st.permutations(["private", "sev 3", "service:api", "playbook:database"]).flatmap(
        lambda order: st.lists(st.sampled_from(order), unique=True).map(lambda some: [o for o in order if o in some])
    ),
    first=st.sampled_from(TITLE_STARTS),
    words=st.lists(st.sampled_from(TITLE_WORDS), max_size=6),
)
def test_declare_reads_options_before_the_title_only(options: list[str], first: str, words: list[str]) -> None:
    """Options in any order before the title; from the title's first word on, nothing is taken out."""
    title = " ".join([first, *words])
    cmd = grammar.parse(" ".join(["declare", *options, title]))
    assert isinstance(cmd, grammar.Declare)
    assert cmd.title == title
    assert cmd.severity == (Severity.P3 if "sev 3" in options else None)
    assert cmd.private == ("private" in options)
    assert (cmd.service, cmd.playbook) == (
        "api" if "service:api" in options else None,
        "database" if "playbook:database" in options else None,
    )


@pytest.mark.parametrize("token", ["P0", "P5", "p10", "sev9", "SEV-0", "sev 7", "P5:"])
def test_declare_refuses_a_severity_it_cannot_read(token: str) -> None:
    with pytest.raises(UsageError, match=f"P1 \\(critical\\) to P4 \\(low\\); got {token}\\."):
        grammar.parse(f"declare private {token} checkout down")


@pytest.mark.parametrize("days", ["²", "90²", "①"])
def test_stats_with_a_unicode_digit_is_a_usage_error_not_a_crash(days: str) -> None:
    _check(f"stats {days}", KNOWN[0])
