"""A record of every Resy call (never its secrets)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow


class ApiCallLog(SQLModel, table=True):
    """One HTTP call to Resy: which endpoint, what came back, how long it took."""

    __tablename__ = "api_call_log"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    method: str = Field(max_length=8)
    endpoint: str = Field(max_length=128)  # the path only: query strings may hold secrets
    status: int | None = None  # None when no response came (timeout, connection error)
    latency_ms: float
    error_kind: str | None = Field(default=None, max_length=32)
    attempt: int = 1
