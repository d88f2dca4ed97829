"""Scheduled jobs: one heartbeat row per job, one run row per pass."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow
from resywatch.db.statuses import JobStatus as JobStatus


class JobHeartbeat(SQLModel, table=True):
    """The latest state of one job, read by `health`."""

    __tablename__ = "job_heartbeat"

    job_name: str = Field(primary_key=True, max_length=64)
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_status: str | None = Field(default=None, max_length=16)  # a JobStatus
    last_error: str | None = None
    next_run_at: datetime | None = None
    running_since: datetime | None = None
    owner: str | None = Field(default=None, max_length=128)  # worker name: host:pid:nonce
    lease_epoch: int = 0  # bumped by every claim: renewals and releases check it
    updated_at: datetime = Field(default_factory=utcnow)


class JobRun(SQLModel, table=True):
    """One pass of one job."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job_name", "started_at"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    job_name: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: str = Field(default=JobStatus.RUNNING, max_length=16)
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    owner: str | None = Field(default=None, max_length=128)
