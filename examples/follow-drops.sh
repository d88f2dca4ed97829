#!/usr/bin/env bash
# Stream drops as they open (NDJSON, one object a line) and print the hotspots, e.g. to
# pipe into a desktop notifier. Stop with Ctrl-C.
set -euo pipefail
read -r -d '' show <<'PY' || true
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print(d["venue_name"], d["slot_date"], d["starts_at"][11:16], flush=True)
PY
resywatch discover feed --follow --hotspots | python3 -u -c "$show"
