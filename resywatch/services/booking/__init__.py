"""Booking: one pipeline for `book now`, auto-book and snipes.

    plan.py      the request (`BookingRequest`), its checks and the plan a try follows; ranking
    quote.py     the quote, the fee ceilings, the dry run and every verdict's message
    outcomes.py  outcomes, exit codes, `Verdict`, `BookingResult` and the errors raised
    booker.py    one try at one slot: details -> fee check -> book -> confirm (`Booker`)
    attempts.py  the `booking_attempt` rows: started, finished, listed
    book.py      `book now` and auto-book
    schedule.py  scheduled snipes: spec, release instant, save, list, cancel
    runs.py      running snipes: claim the due ones, run, finish, mark missed
    sniper.py    the polling loop of one snipe (`Sniper`)

Import from the modules; this package re-exports nothing.
"""
