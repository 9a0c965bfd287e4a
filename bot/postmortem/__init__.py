"""Post-mortem drafts from the incident record.

service.py builds the data (`build`) and renders it with Jinja2 (`render`; templates/ has the
defaults, `postmortem.templates_dir` in bot.yml overrides them); flows.py shares it in the
incident channel on resolve and on `/incident postmortem`; stats.py answers `/incident stats`;
cli.py is `python -m bot postmortem`.
"""
