"""Choosing a playbook: explicit id, then alert labels, keywords, service; deterministic ties."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.exceptions import NotFound
from bot.playbooks.loader import load_playbooks
from bot.playbooks.registry import PlaybookRegistry
from bot.playbooks.schema import Playbook

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.fixture(scope="module")
def shipped() -> PlaybookRegistry:
    return load_playbooks(SHIPPED)


def pb(playbook_id: str, **match: object) -> Playbook:
    return Playbook.model_validate(
        {
            "id": playbook_id,
            "title": playbook_id.title(),
            "match": match,
            "steps": [{"id": "s", "title": "S", "instructions": "x"}],
        }
    )


@pytest.mark.parametrize(
    ("title", "service", "expected"),
    [
        ("Checkout API down, 502 everywhere", None, "service-down"),
        ("gateway not responding", "gateway", "service-down"),
        ("Checkout slow, p95 at 4s", None, "high-latency"),
        ("Requests timing out", None, "high-latency"),
        ("Too many connections on the primary", None, "database"),
        ("Postgres disk full", None, "database"),
        ("something odd", "postgres", "database"),
        ("Leaked credentials on a public repo", None, "security-breach"),
        ("Suspicious logins on the admin panel", None, "security-breach"),
        ("Weird numbers on the dashboard", None, None),
        ("Slowdown", None, None),  # whole words only: "slowdown" is not "slow" nor "down"
        # The titles people type: plurals and past forms of the keywords.
        ("login page 500s", None, "service-down"),
        ("504s from the gateway", None, "service-down"),
        ("api crashes on start", None, "service-down"),
        ("Databases down", None, "database"),  # "databases" and "down" tie: database (alphabetical)
        ("customer data breached?", None, "security-breach"),
        ("api key leaking in logs", None, "security-breach"),
        ("customer data leak", None, "security-breach"),
        # A memory leak is not a breach: a tie would otherwise send "api down, memory leak" to a private channel.
        ("Memory leak in checkout API", None, None),
        ("Memory leaking on worker pods", None, None),
        ("api down, memory leak suspected", None, "service-down"),
        ("Downstream errors", None, None),  # an ending is a suffix, not any longer word
    ],
)
def test_shipped_match_rules(shipped: PlaybookRegistry, title: str, service: str | None, expected: str | None) -> None:
    chosen = shipped.choose(title=title, service=service)
    assert (chosen.id if chosen else None) == expected


def test_explicit_id_wins_over_everything(shipped: PlaybookRegistry) -> None:
    chosen = shipped.explain(explicit="Database", title="api down 502 slow", service="gateway")
    assert chosen is not None and chosen.playbook.id == "database"
    assert chosen.reason == "playbook:database was asked for"


def test_unknown_explicit_id_names_the_closest(shipped: PlaybookRegistry) -> None:
    with pytest.raises(NotFound) as err:
        shipped.choose(explicit="databse")
    assert "Did you mean `database`?" in str(err.value)
    assert "database, high-latency, security-breach, service-down" in str(err.value)


def test_labels_beat_keywords_and_keywords_beat_service() -> None:
    registry = PlaybookRegistry(
        [
            pb("by-label", labels={"alertname": ["PgDown"], "severity": "critical"}),
            pb("by-keyword", keywords=["slow", "latency"]),
            pb("by-service", services=["api"]),
        ]
    )
    labels = {"alertname": "pgdown", "severity": "Critical", "extra": "x"}
    assert registry.choose(title="api slow", service="api", labels=labels).id == "by-label"  # type: ignore[union-attr]
    # Labels are all-of: one missing label is no match at all.
    assert registry.choose(title="api slow", service="api", labels={"alertname": "PgDown"}).id == "by-keyword"  # type: ignore[union-attr]
    assert registry.choose(title="api broken", service="api").id == "by-service"  # type: ignore[union-attr]
    choice = registry.explain(title="slow latency", service="API")
    assert choice is not None and choice.playbook.id == "by-keyword"
    assert choice.reason == "keywords 'slow', 'latency'"


def test_more_keyword_hits_win_and_ties_go_alphabetically() -> None:
    registry = PlaybookRegistry([pb("zeta", keywords=["slow", "db"]), pb("alpha", keywords=["slow"])])
    assert registry.choose(title="db slow").id == "zeta"  # type: ignore[union-attr]
    assert registry.choose(title="slow").id == "alpha"  # type: ignore[union-attr]
    # Same tie, whatever order the playbooks were given in.
    reversed_registry = PlaybookRegistry([pb("alpha", keywords=["slow"]), pb("zeta", keywords=["slow"])])
    assert reversed_registry.choose(title="slow").id == "alpha"  # type: ignore[union-attr]


def test_a_tie_names_the_other_playbook_and_a_private_one_wins_it(shipped: PlaybookRegistry) -> None:
    choice = shipped.explain(title="db down")
    assert choice is not None and choice.playbook.id == "database"
    assert choice.reason == "keywords 'db'; fits as well: `/incident playbook service-down`"
    # A breach that names the database is handled in private, not in the database playbook's public channel.
    for title in ("Database credentials leaked", "postgres breach"):
        choice = shipped.explain(title=title)
        assert choice is not None and choice.playbook.id == "security-breach", title
        assert choice.reason.endswith("fits as well: `/incident playbook database`"), choice.reason


def test_one_word_of_the_title_counts_once() -> None:
    """`leak` and `leaked` both match "leaked": one word, one hit, or listing variants would win ties."""
    registry = PlaybookRegistry(
        [pb("alpha", keywords=["leak", "leaked", "leaking"]), pb("beta", keywords=["leak", "db"])]
    )
    choice = registry.explain(title="db leaked")
    assert choice is not None and choice.playbook.id == "beta"
    assert choice.reason == "keywords 'leak', 'db'"


def test_keywords_with_symbols_and_phrases() -> None:
    registry = PlaybookRegistry([pb("x", keywords=["5xx", "too many connections", "c++"])])
    assert registry.choose(title="Lots of 5XX") is not None
    assert registry.choose(title="FATAL: Too many connections") is not None
    assert registry.choose(title="the c++ service") is not None
    assert registry.choose(title="15xx codes") is None


def test_foundation_hooks(shipped: PlaybookRegistry) -> None:
    """What the declare flow calls: ids(), all(), get(id).severity / .private, choose(title=, service=)."""
    assert "security-breach" in shipped.ids()
    assert [p.id for p in shipped.all()] == shipped.ids()
    assert shipped.get("SECURITY-BREACH").private is True
    assert str(shipped.get("service-down").severity) == "P1"
    assert "database" in shipped and "nope" not in shipped


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("db", ["database"]),  # a keyword
        ("Database issues", ["database"]),  # the title
        ("sec", ["security-breach"]),  # the start of a word
        ("breached", ["security-breach"]),  # a keyword with an ending
        ("slow", ["high-latency", "database"]),  # a keyword first, then a keyword's word (`slow query`)
        ("postgres down", ["database", "service-down"]),  # each word somewhere
        ("xyz", []),
        ("", []),
    ],
)
def test_words_typed_in_place_of_an_id_name_the_playbooks_they_match(
    shipped: PlaybookRegistry, typed: str, expected: list[str]
) -> None:
    assert shipped.matching(typed) == expected
