"""Notification channels: where the outbox relay sends a message.

Built in: `json://host[:port]/path` and `jsons://…` (a JSON POST over http or https; see
`webhook`), `ndjson:///absolute/path.ndjson` (one line appended per notification, fsync'd)
and `ndjson://-` (stdout; see `files`). Every other URL goes to Apprise (ntfy, Slack,
Discord, Telegram, Pushover, email…; see `apprise_channel`), imported only when such a URL
is configured: it is slow to import. With no URL configured the channel is stdout: text for
people, NDJSON with `--json`. `registry` builds the channels from URLs; `base` holds what
every channel shares (the message, the deadline, the errors); `checks` lists and tests them.

Channel URLs embed tokens, so they are shown only through `redact_notify_url`, and every
error a channel reports is scrubbed of that URL's secrets before it is stored or shown.
"""
