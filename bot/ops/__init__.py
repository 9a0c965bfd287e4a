"""/status, /restart and /rollback: permission checks, the audit log, and the flows (`flows.py`)."""
