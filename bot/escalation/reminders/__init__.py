"""Reminders: nudge an open P1/P2's channel for a status update, and chase an unfinished post-mortem.

`rows` plans, defers, finishes and cancels them in the database; `sending` claims one, decides
whether it should still go out, posts it and records it.
"""
