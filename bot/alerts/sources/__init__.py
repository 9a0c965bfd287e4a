"""More alert senders: presets (UptimeRobot, Datadog, Sentry, Pingdom, Better Stack) and JMESPath maps.

Each sender's body is read into `Fields` and turned into the same `Notification` Alertmanager
deliveries become, so storage, grouping, auto-declare and resolve offers are the ones in
`bot.alerts.service`/`flows`: one sender's check or issue is one group with one alert.
"""
