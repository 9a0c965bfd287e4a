"""Tables of the alerts domain."""

from __future__ import annotations
