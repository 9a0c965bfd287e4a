"""The `/incident` command language: text in, a typed command out, or a UsageError that says what to type.

Forgiving on purpose (3 a.m.): case-insensitive words, `p1`/`sev1`/`SEV-1`/`critical` for P1,
a declaration's options in any order before its title, a leading `INC-7` anywhere, and a suggestion for
near-miss subcommands. Never at the cost of a title: `High CPU on api` and `Uploads to S3 failing` stay whole.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bot.config import Severity
from bot.exceptions import UsageError
from bot.incidents import started_time
from bot.incidents.command import Command as Command  # re-exported: callers name every command grammar.X
from bot.incidents.models import UPDATE_STATUSES, Role, Status
from bot.incidents.started_time import Started as Started

USAGE: dict[str, str] = {
    "declare": "/incident declare [private] [P1..P4] [service:<name>] [playbook:<id>] <title>",
    "update": "/incident update <investigating|identified|monitoring> [message]",
    "note": "/incident note <text>",
    "action": "/incident action <follow-up item> [@owner]",
    "sev": "/incident sev <P1..P4>",
    "role": "/incident role <commander|comms|scribe> <@user>",
    "ack": "/incident ack",
    "resolve": "/incident resolve [summary]",
    "started": started_time.USAGE,
    "timeline": "/incident timeline",
    "postmortem": "/incident postmortem [done]",
    "playbook": "/incident playbook <id>",
    "publish": "/incident publish [minor|major|critical|edit] <public message>",
    "unpublish": "/incident unpublish",
    "stats": "/incident stats [days]",
    "list": "/incident list",
    "oncall": "/incident oncall",
    "help": "/incident help",
}

ALIASES = {
    "new": "declare",
    "open": "declare",
    "start": "declare",
    "status": "update",
    "severity": "sev",
    "acknowledge": "ack",
    "close": "resolve",
    "resolved": "resolve",
    "ls": "list",
    "todo": "action",
    "pm": "postmortem",
    "on-call": "oncall",
    "who": "oncall",
    "?": "help",
    "public": "publish",
    "statuspage": "publish",
    "withdraw": "unpublish",
}

# Subcommands that act on one incident (in its channel, or named with INC-<n>).
NEEDS_INCIDENT = {
    "update",
    "note",
    "action",
    "sev",
    "role",
    "ack",
    "resolve",
    "timeline",
    "postmortem",
    "playbook",
    "started",
    "publish",
    "unpublish",
}

# `/incident sev <word>`: one word and no title after it, so plain English words are safe there.
_SEVERITY_WORDS = {
    "p1": Severity.P1,
    "sev1": Severity.P1,
    "sev-1": Severity.P1,
    "s1": Severity.P1,
    "critical": Severity.P1,
    "p2": Severity.P2,
    "sev2": Severity.P2,
    "sev-2": Severity.P2,
    "s2": Severity.P2,
    "high": Severity.P2,
    "p3": Severity.P3,
    "sev3": Severity.P3,
    "sev-3": Severity.P3,
    "s3": Severity.P3,
    "medium": Severity.P3,
    "p4": Severity.P4,
    "sev4": Severity.P4,
    "sev-4": Severity.P4,
    "s4": Severity.P4,
    "low": Severity.P4,
}
# Before a declaration's title only spellings no title starts with count (not `s3`, `high`, `low`), and
# `critical`, which the README promises; P0, P5, `sev 9` are refused rather than read as title words.
_DECLARE_SEVERITY = re.compile(r"(?:p|sev)[-_]?([0-9]+)", re.IGNORECASE)
_SEVERITY_NUMBER = re.compile(r"[0-9]+")

_INCIDENT_REF = re.compile(r"^(?:inc-?|#)?(\d{1,9})$", re.IGNORECASE)
_LEADING_REF = re.compile(r"^(?:inc-?|#)(\d{1,9})$", re.IGNORECASE)
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{6,})$")
_USER_ANYWHERE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")

_ROLE_WORDS = {
    "commander": Role.COMMANDER,
    "ic": Role.COMMANDER,
    "lead": Role.COMMANDER,
    "incident-commander": Role.COMMANDER,
    "comms": Role.COMMS,
    "communications": Role.COMMS,
    "communication": Role.COMMS,
    "scribe": Role.SCRIBE,
    "notes": Role.SCRIBE,
}
_STATUS_WORDS = {
    "investigating": Status.INVESTIGATING,
    "investigate": Status.INVESTIGATING,
    "triage": Status.INVESTIGATING,
    "identified": Status.IDENTIFIED,
    "identify": Status.IDENTIFIED,
    "found": Status.IDENTIFIED,
    "monitoring": Status.MONITORING,
    "monitor": Status.MONITORING,
    "mitigated": Status.MONITORING,
    "fixed": Status.MONITORING,
}

MAX_TITLE = 300
MAX_TEXT = 3000


@dataclass(frozen=True)
class Declare(Command):
    title: str = ""
    severity: Severity | None = None
    service: str | None = None
    playbook: str | None = None
    private: bool = False

    @property
    def interactive(self) -> bool:
        return not self.title


@dataclass(frozen=True)
class Update(Command):
    status: Status = Status.INVESTIGATING
    message: str = ""


@dataclass(frozen=True)
class Text(Command):
    """note, resolve: free text."""

    text: str = ""


@dataclass(frozen=True)
class ActionItemCmd(Command):
    text: str = ""
    owner: str | None = None


@dataclass(frozen=True)
class Sev(Command):
    severity: Severity = Severity.P2


@dataclass(frozen=True)
class RoleCmd(Command):
    role: Role = Role.COMMANDER
    user: str = ""


@dataclass(frozen=True)
class PlaybookCmd(Command):
    playbook: str = ""


@dataclass(frozen=True)
class PostmortemCmd(Command):
    done: bool = False


@dataclass(frozen=True)
class Publish(Command):
    """A public status page update; `impact` is none/minor/major/critical, or None for the last one's."""

    impact: str | None = None
    message: str = ""
    edit: bool = False  # `publish edit <message>`: correct the last public update's message


@dataclass(frozen=True)
class Stats(Command):
    days: int = 30


@dataclass(frozen=True)
class Known:
    """What the parser may suggest from; empty means anything goes.

    `playbooks_like`: the ids of the playbooks whose id, title or keywords match words typed in place of
    an id, best first (the playbook registry's `matching`), so `db` suggests `database`, not only a
    near spelling."""

    services: frozenset[str] = field(default_factory=frozenset)
    playbooks: frozenset[str] = field(default_factory=frozenset)
    playbooks_like: Callable[[str], Sequence[str]] | None = None


_Parser = Callable[[str, "int | None", "list[str]", str, Known], "Command"]


def parse_severity(word: str) -> Severity | None:
    return _SEVERITY_WORDS.get(word.strip().lower())


def parse_user(word: str) -> str | None:
    match = _USER.match(word.strip())
    if not match:
        return None
    return match.group(1) or match.group(2)


def parse_incident_ref(word: str) -> int | None:
    match = _INCIDENT_REF.match(word.strip())
    return int(match.group(1)) if match else None


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _fail(name: str, message: str, suggestion: str | None = None) -> UsageError:
    return UsageError(message, usage=USAGE[name], suggestion=suggestion)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    """Drop control characters (NUL cannot even be stored in PostgreSQL text); keep newlines and tabs."""
    return _CONTROL.sub("", text)


def parse(text: str, *, known: Known | None = None) -> Command:
    known = known or Known()
    words = clean(text).split()
    incident: int | None = None
    # INC-7 may lead the arguments (or follow the subcommand: `/incident note INC-7 ...` is not supported
    # because it would eat a note starting with an incident number).
    if len(words) > 1 and words[0].lower() == "inc" and words[1].isdecimal():
        words = [f"inc{words[1]}", *words[2:]]  # `INC 7`: the number typed apart
    if words and _LEADING_REF.match(words[0]):
        incident = int(_LEADING_REF.match(words[0]).group(1))  # type: ignore[union-attr]
        words = words[1:]
    if not words:
        return Command(name="help", incident=incident)
    head = words[0].lower()
    rest = words[1:]
    name = ALIASES.get(head, head)
    if name not in USAGE:
        if _leading_severity(words, 0, given=None)[1]:
            # `/incident P1 database down`: clearly a declaration (and `/incident P5 …` a wrong severity in one).
            name, rest = "declare", words
        else:
            guess = _closest(head, list(USAGE) + list(ALIASES))
            guess = ALIASES.get(guess, guess) if guess else None
            raise UsageError(
                f"`{head}` is not an /incident command.",
                usage="/incident help",
                suggestion=_corrected(guess, incident, rest, known) if guess else None,
            )
    if name == "declare" and incident is not None:
        raise _fail("declare", "Declare a new incident without an INC number.")
    parser = _PARSERS[name]
    try:
        return parser(name, incident, rest, " ".join(rest), known)
    except UsageError as exc:
        # Typed outside the incident's channel, the suggestion only works with the incident number.
        if incident is not None and exc.suggestion and not exc.suggestion.lower().startswith("/incident inc-"):
            exc.suggestion = exc.suggestion.replace("/incident ", f"/incident INC-{incident} ", 1)
        raise


def _corrected(name: str, incident: int | None, rest: list[str], known: Known) -> str:
    """The command as typed with its subcommand spelled right, if that parses; else the subcommand's usage."""
    if name == "declare" and incident is not None:
        return USAGE[name]
    try:
        _PARSERS[name](name, incident, rest, " ".join(rest), known)
    except UsageError:
        return USAGE[name]
    ref = f"INC-{incident} " if incident is not None else ""
    return " ".join(f"/incident {ref}{name} {' '.join(rest)}".split())


@dataclass
class _DeclareWords:
    """What `/incident declare` said besides its title, and the title's words."""

    severity: Severity | None = None
    service: str | None = None
    playbook: str | None = None
    private: bool = False
    title: list[str] = field(default_factory=list)


def _severity_error(got: str) -> UsageError:
    return _fail("declare", f"Give one severity, P1 (critical) to P4 (low); got {got}.")


def _leading_severity(words: list[str], at: int, *, given: str | None) -> tuple[Severity | None, int]:
    """The severity `words[at]` starts (`P1`, `sev1`, `SEV-1`, `sev 1`, `critical`, a trailing `:` or `,`
    forgiven) and how many words it takes; `(None, 0)` when it is a title word. A second one after
    `given`, or a number outside 1..4, is a UsageError: the title must not silently begin with it."""
    word, taken = words[at].lower().rstrip(":,"), 1
    if word == "critical" and given is None:
        return Severity.P1, 1
    if word == "sev" and at + 1 < len(words) and _SEVERITY_NUMBER.fullmatch(words[at + 1].rstrip(":,")):
        word, taken = "sev" + words[at + 1].rstrip(":,"), 2
    match = _DECLARE_SEVERITY.fullmatch(word)
    if not match:
        return None, 0
    got = " ".join(words[at : at + taken])
    if given is not None:
        raise _severity_error(f"{given} and {got}")
    if match.group(1) not in {"1", "2", "3", "4"}:
        raise _severity_error(got)
    return Severity(f"P{match.group(1)}"), taken


def _option(said: _DeclareWords, word: str) -> bool:
    """`service:<name>` and `playbook:<id>`: their own syntax, so they are read wherever they stand."""
    key, sep, value = word.partition(":")
    if sep and key.lower() in {"service", "svc"} and value:
        said.service = value.lower()
        return True
    if sep and key.lower() in {"playbook", "pb"} and value:
        said.playbook = value.lower()
        return True
    return False


def _declare_words(rest: list[str]) -> _DeclareWords:
    """`private` and a severity in any order before the title; every word from the title's first on is
    the title's, except `service:`/`playbook:` options."""
    said = _DeclareWords()
    given: str | None = None
    at = 0
    while at < len(rest):
        word = rest[at]
        taken = 1
        if _option(said, word):
            pass
        elif said.title:
            said.title.append(word)
        elif word.lower() == "private" and not said.private:
            said.private = True
        else:
            severity, taken = _leading_severity(rest, at, given=given)
            if severity is None:
                said.title.append(word)
                taken = 1
            else:
                said.severity, given = severity, " ".join(rest[at : at + taken])
        at += taken
    return said


def _check_known(
    what: str, value: str | None, known: frozenset[str], guesses: Callable[[str], list[str]] | None = None
) -> None:
    """A service or playbook the bot does not know is refused, with the closest known one suggested
    (`guesses`, best first, when the caller has better ones than spelling; asked only for a refusal)."""
    if value and known and value not in known:
        better = guesses(value) if guesses else []
        guess = better[0] if better else _closest(value, sorted(known))
        raise _fail(
            "declare",
            f"Unknown {what} `{value}`. Known: {', '.join(sorted(known))}.",
            suggestion=f"/incident declare ... {what}:{guess} ..." if guess else None,
        )


def _playbook_guesses(typed: str, known: Known) -> list[str]:
    """Known playbooks that words typed in place of an id may mean: by id, title or keywords first, then
    by spelling."""
    guesses = [p for p in (known.playbooks_like(typed) if known.playbooks_like else []) if p in known.playbooks]
    close = _closest(typed, sorted(known.playbooks))
    if close is not None and close not in guesses:
        guesses.append(close)
    return guesses


def _p_declare(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    said = _declare_words(rest)
    _check_known("service", said.service, known.services)
    _check_known("playbook", said.playbook, known.playbooks, lambda typed: _playbook_guesses(typed, known))
    title = " ".join(said.title).strip()
    if len(title) > MAX_TITLE:
        raise _fail("declare", f"The title is {len(title)} characters; keep it under {MAX_TITLE}.")
    if not title and (said.severity or said.service or said.playbook):
        raise _fail("declare", "Give the incident a title, e.g. `/incident declare P1 Checkout returns 500`.")
    return Declare(
        name=name,
        incident=incident,
        title=title,
        severity=said.severity,
        service=said.service,
        playbook=said.playbook,
        private=said.private,
    )


def _p_update(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    if not rest:
        raise _fail("update", "Say the new status: investigating, identified or monitoring.")
    word = rest[0].lower().rstrip(":,")
    status = _STATUS_WORDS.get(word)
    if status is None:
        if word in {"resolve", "resolved", "closed"}:
            raise _fail("update", "To resolve, use the resolve command.", suggestion="/incident resolve [summary]")
        guess = _closest(word, [s.value for s in UPDATE_STATUSES])
        raise _fail(
            "update",
            f"`{rest[0]}` is not a status. Use investigating, identified or monitoring.",
            suggestion=f"/incident update {guess} {' '.join(rest[1:])}".rstrip() if guess else None,
        )
    message = " ".join(rest[1:]).strip()
    if len(message) > MAX_TEXT:
        raise _fail("update", f"The message is {len(message)} characters; keep it under {MAX_TEXT}.")
    return Update(name=name, incident=incident, status=status, message=message)


def _p_text(required: bool, what: str) -> _Parser:
    def parse_text(name: str, incident: int | None, rest: list[str], text: str, known: Known) -> Command:
        text = text.strip()
        if required and not text:
            raise _fail(name, f"Add the {what}.")
        if len(text) > MAX_TEXT:
            raise _fail(name, f"The {what} is {len(text)} characters; keep it under {MAX_TEXT}.")
        return Text(name=name, incident=incident, text=text)

    return parse_text


def _p_action(name: str, incident: int | None, rest: list[str], text: str, known: Known) -> Command:
    text = text.strip()
    if not text:
        raise _fail("action", "Describe the follow-up item.")
    if len(text) > 2000:
        raise _fail("action", "Keep the follow-up item under 2000 characters.")
    owner_match = _USER_ANYWHERE.search(text)
    owner = owner_match.group(1) if owner_match else None
    if owner_match:
        # The owner is kept apart; the text reads as the task itself, and there must be one.
        text = " ".join((text[: owner_match.start()] + text[owner_match.end() :]).split()).strip(" ,;:-")
        if not text:
            raise _fail("action", "Describe the follow-up item, then its owner: `/incident action Add an alert @bob`.")
    return ActionItemCmd(name=name, incident=incident, text=text, owner=owner)


def _p_sev(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    # `/incident sev 2` reads as it sounds, as `sev 2` does before a declaration's title.
    # `sev 1`, `SEV 1`, `p 1` read as `sev1` and `p1`, as they do before a declaration's title.
    severity = parse_severity(f"p{rest[0]}" if len(rest) == 1 and rest[0].isdecimal() else "".join(rest))
    if severity is None:
        got = " ".join(rest) or "nothing"
        raise _fail("sev", f"Give one severity, P1 (critical) to P4 (low); got {got}.")
    return Sev(name=name, incident=incident, severity=severity)


def _p_role(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    if len(rest) != 2:
        raise _fail("role", "Name a role and a person, e.g. `/incident role commander @alice`.")
    role_word, user_word = rest
    role = _ROLE_WORDS.get(role_word.lower())
    user = parse_user(user_word)
    if role is None and user is None:
        # Forgive swapped order: `/incident role @alice commander`.
        role, user = _ROLE_WORDS.get(user_word.lower()), parse_user(role_word)
    if role is None:
        guess = _closest(role_word, [r.value for r in Role])
        raise _fail(
            "role",
            f"`{role_word}` is not a role. Roles: commander, comms, scribe.",
            suggestion=f"/incident role {guess} {user_word}" if guess else None,
        )
    if user is None:
        raise _fail("role", f"`{user_word}` is not a Slack user. Mention them: @name.")
    return RoleCmd(name=name, incident=incident, role=role, user=user)


def _p_none(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    if rest and name not in {"help"}:
        raise _fail(name, f"`{USAGE[name]}` takes no arguments.", suggestion=f"/incident {name}")
    return Command(name=name, incident=incident)


def _p_playbook(name: str, incident: int | None, rest: list[str], text: str, known: Known) -> Command:
    """One playbook id; a word that is not one (`db`) or its title (`database issues`) is answered with the
    playbooks it matches, the best one as the command to type."""
    listing = f" Known: {', '.join(sorted(known.playbooks))}." if known.playbooks else ""
    typed = text.strip().lower()
    if len(rest) == 1 and (not known.playbooks or typed in known.playbooks):
        return PlaybookCmd(name=name, incident=incident, playbook=typed)
    guesses = _playbook_guesses(typed, known) if typed else []
    if not guesses:
        unknown = f"Unknown playbook `{typed}`." if len(rest) == 1 else "Name one playbook."
        raise _fail("playbook", f"{unknown}{listing}")
    also = f" `{typed}` matches {', '.join(guesses)}." if len(guesses) > 1 else ""
    raise _fail(
        "playbook",
        f"Unknown playbook `{typed}`.{also}{listing}",
        suggestion=f"/incident playbook {guesses[0]}",
    )


def _p_postmortem(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    words = [w.lower() for w in rest]
    if not words:
        return PostmortemCmd(name=name, incident=incident)
    if words in (["done"], ["finished"], ["complete"]):
        return PostmortemCmd(name=name, incident=incident, done=True)
    raise _fail("postmortem", "`/incident postmortem` drafts it again; `/incident postmortem done` marks it finished.")


PUBLIC_IMPACTS = ("none", "minor", "major", "critical")


def _leading_impact(rest: list[str]) -> str | None:
    """The impact word that leads the message, unless it is the message's first word: `Major delays at
    checkout` and `Critical systems are back` are sentences, published whole (not "delays at checkout" with a
    major outage); `major We are…`, `Major: we are…` and `Major We are…` name the impact (a colon or comma
    after the word makes it a label, as with `Edit:`)."""
    word = rest[0] if rest else ""
    impact = word.lower().rstrip(":,")
    if impact not in PUBLIC_IMPACTS:
        return None
    labelled = word != word.rstrip(":,")
    before_lowercase = len(rest) > 1 and rest[1][:1].islower()
    capitalised = word[:1].isupper() and word[1:].islower()
    # `none`, which the usage does not list, begins a sentence in any case: `none of the card data was exposed`
    # is not "of the card data was exposed" with every component operational.
    starts_a_sentence = not labelled and before_lowercase and (capitalised or impact == "none")
    return None if starts_a_sentence else impact


def _leading_edit(rest: list[str]) -> bool:
    """`edit …`, `--edit …`, `Edit: …` correct the last update; `Edit requests fail for some users` is a
    message (a capitalised word followed by a lowercase one, as with impacts)."""
    word = rest[0] if rest else ""
    if word.lower().lstrip("-—–").rstrip(":,") != "edit":
        return False
    return not (word == "Edit" and len(rest) > 1 and rest[1][:1].islower())


def _p_publish(name: str, incident: int | None, rest: list[str], _: str, known: Known) -> Command:
    edit = _leading_edit(rest)
    if edit:
        rest = rest[1:]
    impact = None if edit else _leading_impact(rest)
    if impact is not None:
        rest = rest[1:]
    message = " ".join(rest).strip()
    if not message:
        raise _fail(
            "publish",
            "Write the corrected public message, e.g. `/incident publish edit We are investigating failed payments`."
            if edit
            else "Write the message the public should read, e.g. `/incident publish major We are investigating "
            "failed payments`. Internal notes are never published.",
        )
    if len(message) > MAX_TEXT:
        raise _fail("publish", f"The message is {len(message)} characters; keep it under {MAX_TEXT}.")
    return Publish(name=name, incident=incident, impact=impact, message=message, edit=edit)


DEFAULT_DAYS = 30
MAX_DAYS = 3650
_DAYS = re.compile(r"([0-9]+)\s*(d|day|days|w|wk|week|weeks)?")


def parse_days(text: str | None) -> int:
    """`''` → 30, `7`, `7d`, `7 days`, `2w` → 14; anything else is a UsageError that shows the form."""
    raw = (text or "").strip().lower()
    if not raw:
        return DEFAULT_DAYS
    match = _DAYS.fullmatch(raw)
    days = int(match.group(1)) * (7 if (match.group(2) or "d").startswith("w") else 1) if match else 0
    if not 1 <= days <= MAX_DAYS:
        raise _fail("stats", f"Give a number of days from 1 to {MAX_DAYS}, e.g. `/incident stats 90` or `2w`.")
    return days


def _p_stats(name: str, incident: int | None, rest: list[str], text: str, known: Known) -> Command:
    return Stats(name=name, incident=incident, days=parse_days(text))


def parse_started(text: str) -> Started:
    """`/incident started`'s argument as the command (`started_time.parse` reads it)."""
    return started_time.parse(text)


def _p_started(name: str, incident: int | None, rest: list[str], text: str, known: Known) -> Command:
    return replace(parse_started(text), name=name, incident=incident)


_PARSERS: dict[str, _Parser] = {
    "declare": _p_declare,
    "update": _p_update,
    "note": _p_text(True, "note"),
    "action": _p_action,
    "sev": _p_sev,
    "role": _p_role,
    "ack": _p_none,
    "resolve": _p_text(False, "summary"),
    "timeline": _p_none,
    "postmortem": _p_postmortem,
    "playbook": _p_playbook,
    "publish": _p_publish,
    "unpublish": _p_none,
    "stats": _p_stats,
    "started": _p_started,
    "list": _p_none,
    "oncall": _p_none,
    "help": _p_none,
}


def help_text() -> str:
    lines = [USAGE[name] for name in USAGE]
    lines += [
        "/status [service]",
        "/restart <service>",
        "/rollback <service> [deployment-id]",
        "",
        "In an incident channel commands apply to that incident; elsewhere start with INC-<n>, "
        "e.g. `/incident INC-7 note rolled back`.",
    ]
    return "\n".join(lines)
