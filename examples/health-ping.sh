#!/usr/bin/env bash
# Report `resywatch health` to a healthchecks.io-style ping URL: the exit code says OK (0),
# WARNING (1), CRITICAL (2) or UNKNOWN (3), and the JSON report goes along as the body.
# Usage: health-ping.sh https://hc-ping.com/YOUR-UUID
set -u
ping_url=${1:?usage: health-ping.sh PING_URL}
report=$(resywatch health --json)
status=$?
# healthchecks.io reads /<exit-status> as success (0) or failure (anything else).
curl -fsS -m 10 --retry 3 --data-raw "$report" "$ping_url/$status" >/dev/null
exit "$status"
