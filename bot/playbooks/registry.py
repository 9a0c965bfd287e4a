"""The loaded playbooks, and which one fits an incident.

Precedence when choosing (deterministic, documented in docs/playbooks.md):

1. `playbook:<id>` given on declare (or by an alert rule) wins, always.
2. Otherwise every playbook is scored on its `match` rules and compared on, in this order:
   a. alert labels: the playbook's `labels` all match the alert's labels (the number of labels
      matched counts; more specific rules win);
   b. keywords: how many of its keywords occur in the incident title (whole words, any case, with
      a plural or past ending: `503` matches "503s", `breach` matches "breached");
   c. service: the incident's service is in its `services`.
   A playbook with no hit at all is not a candidate. The comparison is lexicographic, so one
   label match beats any number of keywords, and one keyword beats a service match: machine
   labels are the most precise signal, the words a responder typed say more than the service
   name (a service can be down *or* slow). Remaining ties go to a private playbook first ("database
   credentials leaked" is a security breach before it is a database issue: better a private channel
   too many than a leak discussed in public), then to the playbook id in alphabetical order, so the
   answer never depends on file system order. The reason names the other playbooks that tie.
3. No candidate: None (the chat layer offers a picker).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.exceptions import NotFound
from bot.playbooks.schema import Playbook


@dataclass(frozen=True)
class Choice:
    playbook: Playbook
    reason: str  # "playbook:database on declare", "keywords: slow, p95", ...


# What people add to a keyword at 3 a.m.: "503s", "databases", "breached", "crashes", "leaking".
_ENDINGS = "(?:s|es|d|ed|ing)?"


def _word_pattern(keyword: str) -> re.Pattern[str]:
    # \b fails next to non-word characters ("5xx" works, "p95" works, "c++" would not): use lookarounds.
    # A keyword ending in a letter or digit also matches its plural and past forms, so "503" matches
    # "503s" and "breach" matches "breached" ("breach" alone never matches "breachx").
    ending = _ENDINGS if keyword[-1:].isalnum() else ""
    return re.compile(rf"(?<!\w){re.escape(keyword.lower())}{ending}(?!\w)")


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _word_in(word: str, vocabulary: set[str]) -> bool:
    """`word` is one of `vocabulary`'s, starts one (3 letters at least), or is one with an ending added."""
    if word in vocabulary:
        return True
    if len(word) >= 3 and any(known.startswith(word) for known in vocabulary):
        return True
    return any(re.fullmatch(re.escape(known) + _ENDINGS, word) for known in vocabulary if known)


class PlaybookRegistry:
    def __init__(self, playbooks: list[Playbook]) -> None:
        self._by_id: dict[str, Playbook] = {}
        for playbook in playbooks:
            if playbook.id in self._by_id:
                raise ValueError(f"duplicate playbook id {playbook.id!r}")
            self._by_id[playbook.id] = playbook
        self._keywords = {p.id: [(k, _word_pattern(k)) for k in p.match.keywords] for p in playbooks}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Playbook]:
        return iter(sorted(self._by_id.values(), key=lambda p: p.id))

    def __contains__(self, playbook_id: object) -> bool:
        return isinstance(playbook_id, str) and playbook_id.lower() in self._by_id

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def all(self) -> list[Playbook]:
        """Sorted by id (the picker and the declare modal list them in this order)."""
        return list(self)

    def find(self, playbook_id: str) -> Playbook | None:
        return self._by_id.get(playbook_id.strip().lower())

    def matching(self, text: str) -> list[str]:
        """Ids of the playbooks a word (or words) typed in place of an id names: `db`, `latency`, `sec`,
        `database issues`. Matched against each one's id, title and keywords, best first: the whole text
        being one of those outranks each of its words being found in them (as a word, its start, or with
        a plural or past ending), which outranks some of them being found."""
        typed = _words(text)
        if not typed:
            return []
        found: list[tuple[int, str]] = []
        for playbook in self:
            phrases = {" ".join(_words(name)) for name in (playbook.id, playbook.title, *playbook.match.keywords)}
            vocabulary = {word for phrase in phrases for word in phrase.split()}
            if " ".join(typed) in phrases:
                found.append((0, playbook.id))
            elif all(_word_in(word, vocabulary) for word in typed):
                found.append((1, playbook.id))
            elif any(_word_in(word, vocabulary) for word in typed):
                found.append((2, playbook.id))
        return [playbook_id for _, playbook_id in sorted(found)]

    def get(self, playbook_id: str) -> Playbook:
        """The playbook, or NotFound that lists the valid ids and the closest one."""
        playbook = self.find(playbook_id)
        if playbook is not None:
            return playbook
        if not self._by_id:
            raise NotFound(f"no playbook {playbook_id!r}: no playbooks are loaded (check PLAYBOOKS_DIR)")
        close = difflib.get_close_matches(playbook_id.strip().lower(), self.ids(), n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise NotFound(f"no playbook {playbook_id!r}.{hint} Playbooks: {', '.join(self.ids())}")

    def choose(
        self,
        *,
        explicit: str | None = None,
        title: str = "",
        service: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Playbook | None:
        """Which playbook fits (see the module docstring); None when nothing matches."""
        choice = self.explain(explicit=explicit, title=title, service=service, labels=labels)
        return choice.playbook if choice is not None else None

    def explain(
        self,
        *,
        explicit: str | None = None,
        title: str = "",
        service: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Choice | None:
        """`choose` with the reason, for the timeline. An unknown explicit id raises NotFound."""
        if explicit:
            playbook = self.get(explicit)
            return Choice(playbook, f"playbook:{playbook.id} was asked for")
        best: tuple[tuple[int, int, int], Choice] | None = None
        tied: list[str] = []
        # Among equal scores a private playbook comes first, then ids alphabetically (the first one stays).
        for playbook in sorted(self, key=lambda p: (not p.private, p.id)):
            score, reason = self._score(playbook, title=title, service=service, labels=labels or {})
            if score == (0, 0, 0):
                continue
            if best is None or score > best[0]:
                best, tied = (score, Choice(playbook, reason)), []
            elif score == best[0]:
                tied.append(playbook.id)
        if best is None:
            return None
        if tied:  # "db down": say which other playbook fits as well, and how to switch to it
            other = ", ".join(f"`/incident playbook {t}`" for t in tied)
            return Choice(best[1].playbook, f"{best[1].reason}; fits as well: {other}")
        return best[1]

    def _score(
        self, playbook: Playbook, *, title: str, service: str | None, labels: Mapping[str, str]
    ) -> tuple[tuple[int, int, int], str]:
        reasons = []
        label_hits = 0
        rules = playbook.match.labels
        if rules and labels:
            given = {str(k).lower(): str(v).strip().lower() for k, v in labels.items()}
            if all(given.get(name.lower()) in {v.lower() for v in values} for name, values in rules.items()):
                label_hits = len(rules)
                reasons.append("alert labels " + ", ".join(f"{n}={given[n.lower()]}" for n in rules))
        words = title.lower()
        # One word of the title counts once: "leaked" is matched by both `leak` and `leaked`.
        by_start: dict[int, str] = {}
        for keyword, pattern in self._keywords[playbook.id]:
            if (found := pattern.search(words)) is not None:
                by_start.setdefault(found.start(), keyword)
        hits = list(by_start.values())
        if hits:
            reasons.append("keywords " + ", ".join(repr(k) for k in hits))
        service_hit = 0
        if service and service.strip().lower() in {s.lower() for s in playbook.match.services}:
            service_hit = 1
            reasons.append(f"service {service}")
        return (label_hits, len(hits), service_hit), "; ".join(reasons)
