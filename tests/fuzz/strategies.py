"""Command text as people type it at 3 a.m.: right words, wrong case, stray mentions, any Unicode."""

from __future__ import annotations

from hypothesis import strategies as st

from bot.incidents import grammar

SUBCOMMANDS = sorted(grammar.USAGE)
# Words the parser gives meaning to, so examples reach past the first branch.
VOCABULARY = [
    *grammar.USAGE,
    *grammar.ALIASES,
    "P1",
    "p2",
    "Sev3",
    "SEV-4",
    "s1",
    "critical",
    "low",
    "P5",
    "sev0",
    "P0",
    "sev",
    "2",
    "p3:",
    "S3",
    "high",
    "private",
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "fixed",
    "triage",
    "commander",
    "ic",
    "comms",
    "scribe",
    "notes",
    "<@U0BOB>",
    "<@U0CAROL|carol>",
    "U0LEAD12",
    "<@W0ENT1>",
    "@alice",
    "<!channel>",
    "<!here>",
    "<#C0GENERAL|general>",
    "service:api",
    "svc:API",
    "service:",
    "playbook:service-down",
    "pb:nope",
    "service:<x>",
    "INC-1",
    "inc-2",
    "#3",
    "INC-",
    "INC-0",
    "INC-999999999",
    "INC-1234567890",
    "7",
    "90d",
    "90days",
    "0",
    "3651",
    "-1",
    "²",
    "٣",
    "1e3",
    ":",
    "::",
    "&",
    "&amp;",
    "<",
    ">",
    "`",
    "```",
    "*",
    "_",
    "~",
    "\\",
    "'",
    '"',
]


def _cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.title()])


# NUL included: PostgreSQL text cannot hold it, so the bot must strip it (tests/fault/test_injection.py).
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
word = st.one_of(
    st.sampled_from(VOCABULARY).flatmap(_cased),
    any_text,
    st.sampled_from(["x" * 301, "ü" * 3001, "<!channel>" * 400, "nul\x00byte", "\x00"]),
)
separator = st.sampled_from([" ", "  ", "\n", "\t", " \u00a0 ", "\u3000"])


@st.composite
def command_text(draw: st.DrawFn, subcommand: str | None = None) -> str:
    """`[INC-n] <subcommand> <args...>`; with no subcommand given, the head is drawn too."""
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["INC-1", "inc-2", "INC-99", "inc1", "INC-0"])))
    if subcommand is None:
        parts.append(draw(st.one_of(st.sampled_from(SUBCOMMANDS + list(grammar.ALIASES)).flatmap(_cased), word)))
    else:
        parts.append(draw(_cased(subcommand)))
    parts += draw(st.lists(word, max_size=6))
    sep = draw(separator)
    return sep.join(parts)
