"""Alembic migrations (see README). `HEAD` lets start-up skip importing Alembic when there is nothing to do."""

# The newest revision in versions/. tests/core/test_migrations.py checks it against Alembic's own head:
# bump it with every new revision.
HEAD = "0018"
