"""`python -m bot demo`: a whole incident, played locally, with the real app and no Slack workspace (see run.py)."""
