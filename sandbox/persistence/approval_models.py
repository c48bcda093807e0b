"""Tables of the licence approval modes: query templates, query requests and
the reviewers an owner delegates approvals to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.persistence.models import Base, utcnow


class QueryTemplate(Base):
    """SQL with named parameters that an owner approved for a licence."""

    __tablename__ = "query_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    sql: Mapped[str] = mapped_column(Text)
    parameters: Mapped[list[Any]] = mapped_column(JSON)     # [{name, type, allowed | min/max}]
    epsilon_per_run: Mapped[float] = mapped_column(Float)
    max_runs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    runs_used: Mapped[int] = mapped_column(Integer, default=0)
    epsilon_used: Mapped[float] = mapped_column(Float, default=0.0)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed|approved|returned|rejected|withdrawn|cancelled
    fingerprint: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(64))  # the policy the decision was made on
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class QueryRequest(Base):
    """One query submitted for approval under an ``each`` licence; runs once."""

    __tablename__ = "query_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sql: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    epsilon: Mapped[float] = mapped_column(Float)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected|ran|cancelled
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApprovalDelegate(Base):
    """A reviewer the dataset's owner lets decide templates and requests."""

    __tablename__ = "approval_delegates"
    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
