"""What every parsed `/incident` command is: its own module so that a subcommand's grammar kept apart
from grammar.py (started_time.py) can define its command without importing grammar.py, which imports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    incident: int | None = None
