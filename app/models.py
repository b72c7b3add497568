"""The shared SQLAlchemy models of every Kargo domain.

Models hold columns, relationships and constraints only. Business rules live in
`app.services`; nothing here commits, and nothing here queries on behalf of a view.
Quantities are exact integers in base units (see `app.quantities`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db

ROLES = ("owner", "admin", "member")
# Primary keys are 32-bit integers on PostgreSQL: a larger id names no row, and refusing it
# early keeps the database from raising an out-of-range error (a 500) for /clusters/99999999999.
MAX_ID = 2**31 - 1
DEPLOYMENT_STATUSES = ("running", "pending")


# Ids are never reused, so an id held by a script, a link or a message can only ever name the
# row it named. PostgreSQL sequences never go back; SQLite reuses the largest rowid after the
# newest row is deleted unless the table is declared AUTOINCREMENT, which every table with an
# integer key does through these table arguments (tests/test_migrations.py checks both).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def valid_id(value: object) -> bool:
    """Could `value` be a primary key here (a positive int within the 32-bit column)?"""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def utcnow() -> datetime:
    """Naive UTC now: both SQLite and PostgreSQL columns here store naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Credential:
    """What authenticated a request: a login session (cookie) or an API token, by row id.

    `secret` is the session key kept in the signed cookie (Flask-Login's user id); it is never
    stored, only its SHA-256. Services read `User.credential` to spare the caller's own
    session or token when they end the others (a password change).
    """

    kind: str  # "session" | "token"
    id: int
    secret: str | None = None


class Organization(db.Model):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    deployment_quota: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Owners and admins create clusters; owners may open creation to every member.
    members_can_create_clusters: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    # Priority rights: the highest priority members and admins may give a deployment (owners
    # always may use every priority). Set by owners.
    member_max_priority: Mapped[int] = mapped_column(default=800, server_default="800")
    admin_max_priority: Mapped[int] = mapped_column(default=1000, server_default="1000")

    members: Mapped[list[User]] = relationship(back_populates="organization")

    __table_args__ = (
        sa.CheckConstraint("deployment_quota >= 0", name="quota_not_negative"),
        sa.CheckConstraint(
            "member_max_priority >= 0 AND member_max_priority <= 1000",
            name="member_max_priority_range",
        ),
        sa.CheckConstraint(
            "admin_max_priority >= 0 AND admin_max_priority <= 1000",
            name="admin_max_priority_range",
        ),
        NEVER_REUSE_IDS,
    )


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Every user belongs to exactly one organization: NOT NULL plus a foreign key.
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    username: Mapped[str] = mapped_column(sa.String(40))
    # Lower-cased username; its unique constraint makes usernames case-insensitively unique.
    username_key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(80))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(10), default="member")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="members")

    __table_args__ = (
        sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name="role_known"),
        NEVER_REUSE_IDS,
    )

    # Set on the loaded user by the session and token loaders (`services.accounts`); never
    # stored in this table.
    credential = None  # a Credential, per loaded instance (not annotated: not a column)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """Flask-Login keeps this in the cookie: the key of the user's server-side session,
        so ending the session row ends the cookie, whatever its signature says."""
        if self.credential is None or self.credential.kind != "session":
            raise RuntimeError("log in through services.accounts.open_session")
        return self.credential.secret or ""


class LoginSession(db.Model):
    """One logged-in browser. Logging out, a password change and deactivation delete rows."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the session key; the key itself lives only in the signed cookie.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    __table_args__ = (NEVER_REUSE_IDS,)


class Invite(db.Model):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the code; the code itself is shown once and never stored.
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    # Who it is for, in the inviter's words, and the role the invitee will get.
    label: Mapped[str] = mapped_column(sa.String(80), default="", server_default="")
    role: Mapped[str] = mapped_column(sa.String(10), default="member", server_default="member")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    used_by: Mapped[User | None] = relationship(foreign_keys=[used_by_id])

    __table_args__ = (
        sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name="role_known"),
        NEVER_REUSE_IDS,
    )


class PasswordReset(db.Model):
    """A single-use link an owner gives a member who forgot their password (no email here)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the code; the code itself is shown once and never stored.
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    __table_args__ = (NEVER_REUSE_IDS,)


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Named by its owner on the tokens page; tokens from the API login are "API login".
    name: Mapped[str] = mapped_column(
        sa.String(80), default="API login", server_default="API login"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Updated at most once per TOKEN_LAST_USED_INTERVAL_SECONDS, so use costs few writes.
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()

    __table_args__ = (NEVER_REUSE_IDS,)


class Cluster(db.Model):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(63))
    max_deployments: Mapped[int]
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped by every scheduling transaction: the live dashboard's ETag, so an unchanged
    # cluster is answered 304 without loading or rendering its deployments.
    state_version: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # Opt-in repack (docs/scheduling.md, "Repack"): running work may be moved back to the queue
    # for queued work of the same priority when each move raises utilization by at least the
    # threshold (basis points of mean utilization), at most so many moves an hour, never the
    # same deployment twice within the cooldown.
    repack_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    repack_threshold_bp: Mapped[int] = mapped_column(default=200, server_default="200")
    repack_max_per_hour: Mapped[int] = mapped_column(default=6, server_default="6")
    repack_cooldown_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    # The operator-declared engine (app/runtime, ENGINES) whose containers this cluster runs;
    # None: the simulated runtime (resources are accounting only).
    engine: Mapped[str | None] = mapped_column(sa.String(63))
    # Fair use (docs/scheduling.md, "Fair use"): running work younger than the minimum run time
    # is a victim only when no other choice makes room; a deployment waiting longer than the
    # starvation threshold gets a reservation (None: the guard is off).
    min_run_minutes: Mapped[int] = mapped_column(default=0, server_default="0")
    starvation_minutes: Mapped[int | None]

    resources: Mapped[list[ClusterResource]] = relationship(
        back_populates="cluster",
        cascade="all, delete-orphan",
        order_by="ClusterResource.position",
    )
    created_by: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("organization_id", "name", name="uq_clusters_org_name"),
        sa.CheckConstraint("max_deployments > 0", name="max_deployments_positive"),
        sa.CheckConstraint(
            "repack_threshold_bp > 0 AND repack_threshold_bp <= 10000",
            name="repack_threshold_range",
        ),
        sa.CheckConstraint("repack_max_per_hour > 0", name="repack_max_per_hour_positive"),
        sa.CheckConstraint("repack_cooldown_minutes >= 0", name="repack_cooldown_not_negative"),
        sa.CheckConstraint("min_run_minutes >= 0", name="min_run_not_negative"),
        sa.CheckConstraint(
            "starvation_minutes IS NULL OR starvation_minutes > 0", name="starvation_positive"
        ),
        NEVER_REUSE_IDS,
    )


class ClusterResource(db.Model):
    """One resource kind of one cluster: a fixed capacity and the current usage, in base units."""

    __tablename__ = "cluster_resources"

    cluster_id: Mapped[int] = mapped_column(
        sa.ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)
    capacity: Mapped[int] = mapped_column(sa.BigInteger)
    used: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    cluster: Mapped[Cluster] = relationship(back_populates="resources")

    __table_args__ = (
        sa.CheckConstraint("capacity > 0", name="capacity_positive"),
        sa.CheckConstraint("used >= 0", name="used_not_negative"),
        sa.CheckConstraint("used <= capacity", name="used_within_capacity"),
    )


class Deployment(db.Model):
    """A Docker image with resource requests and a priority, running or queued on one cluster.

    `requests` maps resource kind to an exact integer amount in base units.
    """

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(sa.String(63))
    image: Mapped[str] = mapped_column(sa.String(512))
    priority: Mapped[int]
    requests: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(10))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    queue_position: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    # The same reason as data (`app.scheduler.Wait.to_dict()`): cause, kind, amounts, the
    # deployments holding the room; null while running.
    wait: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    preemptions: Mapped[int] = mapped_column(default=0)
    preempted_by_id: Mapped[int | None]
    last_event: Mapped[str | None] = mapped_column(sa.String(300))
    # Set when preempted; cleared once the creator has seen the notice.
    preemption_notice: Mapped[str | None] = mapped_column(sa.String(300))
    # What a real container needs (app/runtime): published ports as
    # [{"container": 80, "host": null | 8080, "protocol": "tcp"}], environment variables
    # (name -> value; never shown back in full) and an optional command (argv list).
    ports: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    env: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    command: Mapped[list[str] | None] = mapped_column(sa.JSON)
    # Preemption policy: False ("never preempts") waits for free room instead of evicting.
    may_preempt: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # Maximum run time: at its end (counted from its latest start) the deployment finishes.
    max_run_minutes: Mapped[int | None]

    created_by: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("cluster_id", "name", name="uq_deployments_cluster_name"),
        sa.CheckConstraint("status IN ('running', 'pending')", name="status_known"),
        sa.CheckConstraint("priority >= 0 AND priority <= 1000", name="priority_range"),
        sa.CheckConstraint(
            "max_run_minutes IS NULL OR max_run_minutes > 0", name="max_run_positive"
        ),
        sa.Index("ix_deployments_cluster_status", "cluster_id", "status"),
        sa.Index("ix_deployments_org_status", "organization_id", "status"),
        sa.Index("ix_deployments_creator_notice", "created_by_id", "preemption_notice"),
        # Room in each PostgreSQL page for the queue's rewrites, which then skip every index
        # (see the migration f3a9c1d07e52).
        {**NEVER_REUSE_IDS, "postgresql_with": {"fillfactor": 70}},
    )


QUOTA_SCOPES = ("organization", "each_member", "member")


class ResourceQuota(db.Model):
    """A resource quota of an organization (docs/scheduling.md, "Fair use"): at most `amount`
    of `kind` (base units) held by running deployments, counted for the whole organization
    (`organization`), for every member separately (`each_member`) or for one member
    (`member`, `user_id`); on one cluster (`cluster_id`) or across all; for deployments of
    priority `min_priority`..`max_priority`. Quotas never preempt: over one, work waits."""

    __tablename__ = "resource_quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    cluster_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    min_priority: Mapped[int] = mapped_column(default=0, server_default="0")
    max_priority: Mapped[int] = mapped_column(default=1000, server_default="1000")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(
            "scope IN ('organization', 'each_member', 'member')", name="scope_known"
        ),
        sa.CheckConstraint(
            "(scope = 'member') = (user_id IS NOT NULL)", name="member_scope_names_user"
        ),
        sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
        sa.CheckConstraint(
            "min_priority >= 0 AND min_priority <= max_priority AND max_priority <= 1000",
            name="priority_range",
        ),
        NEVER_REUSE_IDS,
    )


class Event(db.Model):
    """One thing that happened in an organization: the audit log, timelines and the outbox.

    Append-only. Written by `app.services.history.record` in the transaction of the change it
    describes. Subjects and actors are named as they were at the time (`subject_name`,
    `actor_name`) and carry no foreign keys, so an entry outlives what it names.
    """

    __tablename__ = "events"

    # 64-bit on PostgreSQL (a busy organization writes many); SQLite's INTEGER is 64-bit already.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # "user" (actor_id names the user), or a component: "scheduler", "reconciler", "system".
    actor_kind: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(sa.String(80))
    # Dotted, subject first: "deployment.preempted", "invite.revoked", "cluster.created".
    action: Mapped[str] = mapped_column(sa.String(48))
    subject_kind: Mapped[str] = mapped_column(sa.String(24))
    subject_id: Mapped[int | None]
    subject_name: Mapped[str | None] = mapped_column(sa.String(100))
    # The cluster a deployment or cluster event concerns, for per-cluster views.
    cluster_id: Mapped[int | None]
    # One sentence for people, and the details (before/after values) for machines.
    message: Mapped[str] = mapped_column(sa.String(500))
    data: Mapped[dict | None] = mapped_column(sa.JSON)

    __table_args__ = (
        sa.Index("ix_events_org_id", "organization_id", "id"),
        sa.Index("ix_events_subject", "subject_kind", "subject_id", "id"),
        # Recent events of one kind on a cluster (the repack's hourly budget and cooldown).
        sa.Index("ix_events_cluster_action_at", "cluster_id", "action", "at"),
        sa.CheckConstraint(
            "actor_kind IN ('user', 'scheduler', 'reconciler', 'system')", name="actor_kind_known"
        ),
        # Ids are never reused, even after pruning: readers resume from the last id they saw.
        NEVER_REUSE_IDS,
    )


RUNTIME_STATUSES = ("starting", "pulling", "running", "restarting", "failed", "exited", "stopped")


class DeploymentRuntime(db.Model):
    """What the reconciler last observed of a deployment's container (or swarm service).

    Written only by `app.services.runtime` (the reconciler); one row per deployment that an
    engine-backed cluster has tried to run. The scheduler's state stays on `deployments`.
    """

    __tablename__ = "deployment_runtime"

    deployment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(12))
    exit_code: Mapped[int | None]
    restart_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # The last error in words ("image pull failed: ...", "no suitable node: ...").
    error: Mapped[str | None] = mapped_column(sa.String(500))
    container_id: Mapped[str | None] = mapped_column(sa.String(80))
    # The container's own start time (not the scheduler's admission time).
    started_at: Mapped[datetime | None]
    # The scheduler start (deployments.started_at) this container was made for: a container of
    # an earlier run (preempted, then restarted) is replaced, never reused.
    generation: Mapped[str | None] = mapped_column(sa.String(32))
    # Published ports as observed: [{"container": 80, "host": 49153, "address": "127.0.0.1"}].
    ports: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    # When the reconciler may try again after a failure (restart backoff, pull retry).
    retry_at: Mapped[datetime | None]
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.Index("ix_deployment_runtime_cluster", "cluster_id"),
        sa.CheckConstraint(
            "status IN ('starting', 'pulling', 'running', 'restarting', 'failed', 'exited', "
            "'stopped')",
            name="runtime_status_known",
        ),
    )


class ClusterRuntime(db.Model):
    """A cluster's engine as the reconciler sees it, and the lease that makes one reconciler
    at a time its only writer (holder + expiry; a crashed holder's lease simply runs out)."""

    __tablename__ = "cluster_runtime"

    cluster_id: Mapped[int] = mapped_column(
        sa.ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]
    # "unknown" (never reached yet), "ok" or "unreachable".
    engine_state: Mapped[str] = mapped_column(sa.String(12), default="unknown")
    engine_error: Mapped[str | None] = mapped_column(sa.String(500))
    checked_at: Mapped[datetime | None]
    # Swarm: [{"id", "hostname", "state", "availability", "cpu", "ram"}]; docker: one entry.
    nodes: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    # The engine's capacity as last read (kind -> base units).
    capacity: Mapped[dict[str, int] | None] = mapped_column(sa.JSON)
    last_pass_at: Mapped[datetime | None]


class ReconcilerPresence(db.Model):
    """A running reconciler, as its loop last said so: the live ones share the clusters' leases
    (each takes about its share, and gives back what is beyond it when another one joins)."""

    __tablename__ = "reconciler_presence"

    holder: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    seen_at: Mapped[datetime]


class UsageSample(db.Model):
    """The resource trail: a cluster's usage, queued demand and capacity per kind over time.

    Written by `services.clusters` in the scheduling transaction, one row per change (`step`
    0: the state from `at` until the next row). `flask kargo prune-history` rolls older change
    rows up into minute rows and those into hour rows (`step` 60 or 3600: time-weighted means
    over the bucket starting at `at`, the bucket's peak and the state it ended in), one per
    bucket that saw a change, so a year of a busy cluster is at most 8,760 hour rows. Amounts
    are exact integers in base units, by kind.
    """

    __tablename__ = "usage_samples"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    step: Mapped[int] = mapped_column(default=0, server_default="0")
    used: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    peak: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    queued: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    capacity: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    # Rolled-up rows only: the state at the end of the bucket ({"used": ..., "queued": ...}),
    # which holds from `at + step` until the next row.
    settled: Mapped[dict[str, dict[str, int]] | None] = mapped_column(sa.JSON)

    __table_args__ = (
        sa.Index("ix_usage_samples_cluster_at", "cluster_id", "at"),
        sa.CheckConstraint("step IN (0, 60, 3600)", name="step_known"),
        NEVER_REUSE_IDS,
    )


class Webhook(db.Model):
    """An organization's HTTP endpoint that receives signed events (docs/webhooks.md)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(sa.String(2000))
    # The HMAC key shared with the receiver; shown once, kept to sign every delivery.
    secret: Mapped[str] = mapped_column(sa.String(128))
    # Webhook event names (`services.notifications.EVENTS`) it subscribes to.
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (NEVER_REUSE_IDS,)


class Delivery(db.Model):
    """The outbox: one message to send, written in the transaction of the event it carries.

    `channel` is "webhook" (`webhook_id` set) or "email" (`user_id` set). The notify worker
    sends due rows in id order, one at a time per (`target`, `ordering_key`), so the events of
    one deployment reach a receiver in the order they happened. `body` is the exact JSON sent.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(sa.String(10), default="webhook")
    webhook_id: Mapped[int | None] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    event: Mapped[str] = mapped_column(sa.String(48))
    ordering_key: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(sa.Text)
    # pending (to send or retry), delivered, failed (gave up after the last attempt)
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A worker claims a row until then (a crashed worker's claim lapses).
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    last_duration_ms: Mapped[int | None]

    __table_args__ = (
        sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_deliveries_webhook", "webhook_id", "id"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        sa.CheckConstraint("channel IN ('webhook', 'email')", name="channel_known"),
        NEVER_REUSE_IDS,
    )


class DeliveryAttempt(db.Model):
    """One try of a delivery: when, the HTTP status (or the error) and how long it took."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    delivery_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        index=True,
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(300))
    duration_ms: Mapped[int]

    __table_args__ = (NEVER_REUSE_IDS,)


class MailPreference(db.Model):
    """Where and which mails a user gets about their own deployments (when SMTP is set up)."""

    __tablename__ = "mail_preferences"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    email: Mapped[str] = mapped_column(sa.String(254), default="", server_default="")
    on_preempted: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    on_started: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    on_failed: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (NEVER_REUSE_IDS,)
