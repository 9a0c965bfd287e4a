"""Archiving a resolved incident's channel `channels.archive_after` after resolution."""
