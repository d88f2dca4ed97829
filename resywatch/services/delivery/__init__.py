"""Outbox delivery: pending notifications to every channel, at least once and, in practice,
exactly once.

`relay` runs the passes; `claims` leases a batch of rows to one relay; `sending` sends a
batch to every channel at once; `records` writes what each send came to, fenced by the lease;
`policy` says how hard to try and what a run reports.
"""
