"""What a venue has open for a date, party size, time window and seating types: the one
question watches, notify requests and booking all ask."""

from __future__ import annotations

import asyncio
from datetime import date

from resywatch.resy.client import ResyClient
from resywatch.services.vocabulary import OpenSlot, Want, slot_id


async def open_slots(resy: ResyClient, venue_id: int, want: Want, today: date) -> list[OpenSlot]:
    """Every matching open slot at the venue over the wanted days still to come."""
    days = [d for d in want.days() if d >= today]
    answers = await asyncio.gather(*(resy.find(venue_id, d, want.party_size) for d in days))
    found: list[OpenSlot] = []
    for day, answer in zip(days, answers, strict=True):
        # Only the venue asked for (another venue's slots are not its slots), and each
        # bookable slot once (one token, however many tables list it).
        entry = answer.entry_for(venue_id)
        if entry is None:
            continue
        for slot in answer.slots_at(venue_id):
            if slot.starts_at.date() == day and want.matches(slot):
                found.append(
                    OpenSlot(
                        venue_id=venue_id,
                        venue_name=entry.venue.name,
                        day=day,
                        starts_at=slot.starts_at,
                        seating_type=slot.seating_type,
                        token=slot.config.token,
                        slot_id=slot_id(venue_id, slot.starts_at),
                        restricted=slot.restricted,
                        captcha=bool(entry.venue.feature_recaptcha),
                    )
                )
    return sorted(found, key=lambda s: (s.starts_at, s.seating_type or ""))
