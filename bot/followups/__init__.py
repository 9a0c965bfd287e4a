"""Follow-ups (action items) as issues in the team's tracker: GitHub, Jira or Linear."""
