"""How hard delivery tries (rounds, retry delays, the claim lease) and what a run reports."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from resywatch.db.models import NotificationStatus

if TYPE_CHECKING:
    from resywatch.config import Settings

PROBLEMS_KEPT = 50  # the report lists at most this many failed or retried rows


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: rounds per notification, the retry delays, the claim lease."""

    max_attempts: int = 8
    retry_base_s: float = 15.0
    retry_max_s: float = 900.0
    # Renewed after every send, so it only has to outlast one send (HTTP deadline included).
    lease_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.notify_max_attempts,
            retry_base_s=settings.notify_retry_base_s,
            retry_max_s=settings.notify_retry_max_s,
            lease_s=max(120.0, 4 * settings.notify_timeout_s),
        )

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after `attempts` failed rounds: base x 2^(attempts-1), capped, then
        jittered into its upper half so relays that failed together do not retry together."""
        window = min(self.retry_max_s, self.retry_base_s * 2.0 ** min(attempts - 1, 60))
        return timedelta(seconds=window / 2 + rng.uniform(0, window / 2))


@dataclass(frozen=True)
class Problem:
    """A notification that failed this run: retried later (`pending`) or given up (`failed`)."""

    id: int
    dedupe_key: str
    status: NotificationStatus
    attempts: int
    error: str | None

    @property
    def will_retry(self) -> bool:
        return self.status == NotificationStatus.PENDING


@dataclass
class DeliveryReport:
    """What one run did. `skipped`: due rows that another relay held (leased)."""

    sent: int = 0  # notifications now on every channel
    failed: int = 0  # given up: permanent refusal or out of attempts
    retried: int = 0  # failed transiently, rescheduled
    skipped: int = 0
    deliveries: int = 0  # successful sends to one channel
    batches: int = 0
    duration_s: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.retried

    def add(self, other: DeliveryReport) -> None:
        """Fold in another pass (a loop): counts add up; skipped is the most seen at once."""
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.skipped = max(self.skipped, other.skipped)
        self.deliveries += other.deliveries
        self.batches += other.batches
        self.problems = (self.problems + other.problems)[-PROBLEMS_KEPT:]
