#!/usr/bin/env bash
# Post what just opened (hotspots first) to a chat webhook (Slack/Discord-compatible
# "text" payload). Run it from cron after a discovery pass, e.g. every 5 minutes.
# Usage: just-opened-to-webhook.sh WEBHOOK_URL [MINUTES]
set -euo pipefail
webhook=${1:?usage: just-opened-to-webhook.sh WEBHOOK_URL [MINUTES]}
minutes=${2:-5}
read -r -d '' to_message <<'PY' || true
import json, sys
days = json.load(sys.stdin)["just_opened"]  # one entry per venue per date
lines = []
for day in days:
    for v in day["venues"]:
        flame = "🔥 " if v["is_hotspot"] else ""
        party = "/".join(str(p) for p in v["party_sizes"])
        times = ", ".join(v["times"])
        lines.append(f'{flame}{v["venue_name"]}: {day["date"]} {times} '
                     f'for {party} {v["url"] or ""}'.rstrip())
if lines:
    print(json.dumps({"text": "\n".join(lines)}))
PY
payload=$(resywatch discover just-opened --minutes "$minutes" --json | python3 -c "$to_message")
[ -n "$payload" ] || exit 0  # nothing new: stay quiet
curl -fsS -m 10 -H 'Content-Type: application/json' --data-raw "$payload" "$webhook" >/dev/null
