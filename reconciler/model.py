"""The vendor-neutral vocabulary every stage speaks: grants, changes, actions, plans.

Everything here is an immutable pydantic model so that a plan can be saved,
reloaded and applied exactly as it was reviewed (Terraform's "the plan is data").
No vendor is named in this module; providers translate to and from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

SubjectKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
"""Who holds a license, in its provider's words (`user`, `device`, `tenant`, ...).

Each provider declares the kinds it manages (`Provider.subject_kinds`); the core
knows none of them, so a new vendor can bring a new kind without touching it."""


class Frozen(BaseModel):
    """Base for value objects: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# Location and Subject exist once or twice per grant (100k+ in a large estate): slotted
# pydantic dataclasses keep their validation at a tenth of a model's memory.
@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Location:
    """Where a declaration came from, so every error can say `file:line`."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Subject:
    """Who holds a license: a user, a device, a tenant, ..."""

    kind: SubjectKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


GrantKey = tuple[str, str, str, str, str]
"""(provider, pool, subject kind, subject id, license): identity of a grant."""


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Grant:
    """One license held by one subject, drawn from one pool.

    `quantity` is set for allocations (counts, not seats); `expires` schedules a
    removal; `attrs` carries vendor detail that is part of the desired value (for
    example disabled service plans). `source` is provenance, not identity.
    A slotted dataclass: a large estate holds two of these per seat while planning.
    """

    provider: str
    pool: str
    subject: Subject
    license: str
    quantity: int | None = None
    expires: dt.date | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Location | None = None

    def replace(self, **changes: Any) -> Grant:
        """A copy with some fields changed (frozen: grants are never edited in place)."""
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> GrantKey:
        return (self.provider, self.pool, self.subject.kind, self.subject.id, self.license)

    @property
    def units(self) -> int:
        """Seats this grant consumes from its pool."""
        return 1 if self.quantity is None else self.quantity

    def value(self) -> dict[str, Any]:
        """The comparable part of a grant: what a difference in it would change."""
        return {"quantity": self.quantity, "expires": self.expires, "attrs": self.attrs}


class PoolState(Frozen):
    """Where seats come from, as the vendor reports it now."""

    provider: str
    id: str
    name: str = ""
    capacity: int | None = None
    used: int = 0
    unit: Literal["seats", "quantity"] = "seats"


class PendingChange(Frozen):
    """A change the vendor accepted but has not carried out yet (async vendors)."""

    provider: str
    key: GrantKey
    direction: Literal["add", "remove", "update"]
    request_id: str
    description: str
    quantity: int = 1
    """Units the change takes from its pool when carried out (a seat, or an allocation's
    count; negative when it frees): capacity counts them as taken while it waits."""


class CurrentState(Frozen):
    """The facts one provider read: live grants, pools, and a digest per scope read.

    A fingerprint is a digest of one scope's raw data (a pack, a license, a tenant);
    `apply PLANFILE` re-reads and compares them to refuse a stale plan.
    """

    provider: str
    grants: tuple[Grant, ...] = ()
    pools: tuple[PoolState, ...] = ()
    fingerprints: dict[str, str] = Field(default_factory=dict)
    pending: tuple[PendingChange, ...] = ()
    seats_added: dict[tuple[str, str, str], int] = Field(default_factory=dict, exclude=True)
    """(pool, subject kind, subject id) → the seats a grant added there would take, where
    that is not its units: Graph counts one unit per user however many paths license
    them, so a direct licence for a user who inherits it takes 0, and a licence for a
    group takes one per member who holds it by no other path."""
    seats_removed: dict[tuple[str, str, str], int] = Field(default_factory=dict, exclude=True)
    """(pool, subject kind, subject id) → the seats removing the grant there would free,
    where that is not its units (0 for a user who keeps the licence through a group)."""
    facts: Any = Field(default=None, exclude=True)
    """The provider's own typed facts from this read (its `check` and `actions` use
    them): a provider keeps nothing on itself between reading and planning."""


class ChangeKind(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    UPDATE = "update"


class Change(Frozen):
    """One grant to add, remove or update, and why."""

    kind: ChangeKind
    before: Grant | None = None
    after: Grant | None = None
    reason: str
    seats: int | None = None
    """Seats the change takes (negative: frees) when that is not the difference of the
    grants' units (`CurrentState.seats_added`, `seats_removed`). Left out of the JSON
    when unset."""

    @model_serializer(mode="wrap")
    def _without_unset_seats(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A plan file written before `seats` existed seals and reads back the same."""
        dumped: dict[str, Any] = handler(self)
        if dumped.get("seats", 0) is None:
            del dumped["seats"]
        return dumped

    @property
    def grant(self) -> Grant:
        chosen = self.after if self.after is not None else self.before
        assert chosen is not None, "a change has a before or an after"
        return chosen

    @property
    def seat_delta(self) -> int:
        if self.seats is not None:
            return self.seats
        before = self.before.units if self.before is not None else 0
        after = self.after.units if self.after is not None else 0
        return after - before


Verb = Literal["assign", "remove", "release", "allocate", "update"]


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class Call(Frozen):
    """One HTTP request as data, built once by a provider and sent exactly as built.

    `path` is a tuple of segments, never a formatted string: each segment is
    percent-encoded on its own when the URL is made (`reconciler.http.url_path`),
    so an id can name a subject but never change which endpoint is called. A call
    holds no secret and no host: credentials and the base URL are added when it is
    sent, from the YAML and the environment only.
    """

    method: HttpMethod
    path: tuple[str, ...]
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    form: tuple[tuple[str, str], ...] | None = None

    @classmethod
    def to(
        cls,
        method: HttpMethod,
        *segments: str | int,
        query: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> Call:
        """`Call.to("GET", "v2", "accounts", account, "license-packs", query={...})`."""
        pairs = tuple(query.items()) if isinstance(query, Mapping) else tuple(query)
        return cls(
            method=method,
            path=tuple(str(segment) for segment in segments),
            query=pairs,
            body=body,
            form=tuple(form.items()) if form is not None else None,
        )

    def with_query(self, **extra: str) -> Call:
        return self.model_copy(update={"query": (*self.query, *extra.items())})

    def query_value(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


def literal_path(path: str) -> tuple[str, ...]:
    """Segments of a fixed path written in code or in reviewed YAML (`/RestAPI/X`).

    Only for paths that are configuration, never for ids: an id goes in as one
    segment of its own.
    """
    return tuple(part for part in path.split("/") if part)


class RequestPreview(Frozen):
    """The HTTP call an action makes, with every secret already masked."""

    method: str
    url: str
    body: Any = None


class Action(Frozen):
    """One vendor call (or one batch call) that carries out one or more changes.

    `phase` orders actions (lower first); `frees` marks an action that returns seats
    to its pool, so takes in that pool can wait for it. `repeatable` is the
    provider's word on whether sending the call twice is harmless: retry and crash
    recovery read it instead of guessing.
    """

    id: str
    verb: Verb
    provider: str
    pool: str
    subject: Subject
    license: str
    phase: int
    frees: bool = False
    seat_delta: int = 0
    depends_on: tuple[str, ...] = ()
    reason: str
    request: RequestPreview
    changes: tuple[Change, ...] = ()
    repeatable: bool = True
    call: Call


class PoolSummary(Frozen):
    provider: str
    pool: str
    capacity: int | None
    used_before: int
    used_after: int
    seat_delta: int
    unit_price: float | None = None
    currency: str | None = None
    period: str | None = None


class Summary(Frozen):
    counts: dict[str, int]
    pools: tuple[PoolSummary, ...] = ()
    protected_skips: int = 0
    pending: int = 0
    in_sync: int = 0
    unmanaged: int = 0


class ProviderError(Frozen):
    """A provider that could not be read (or its journal's requests settled): its plan
    is missing from this one, so the run fails and the plan cannot be applied."""

    provider: str
    message: str


class Plan(Frozen):
    """An ordered, reviewable, replayable list of actions.

    `config_digest` and `fingerprints` pin the inputs it was made from, so applying
    it later can refuse when the YAML or the vendor state moved underneath it.
    """

    format_version: int = 1
    config_digest: str
    config_paths: tuple[str, ...] = ()
    fingerprints: dict[str, dict[str, str]] = Field(default_factory=dict)
    summary: Summary
    actions: tuple[Action, ...] = ()
    pending: tuple[PendingChange, ...] = ()
    notes: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    """`--target` values the plan was limited to (empty: the whole estate)."""
    sandbox: bool = False
    """Made against the built-in simulators: `apply` refuses to send it to real vendors."""
    errors: tuple[ProviderError, ...] = ()
    """Providers that failed to read: the others are planned and shown, but a plan with
    errors is incomplete, so `apply` refuses it."""

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def converged(self) -> bool:
        """No action and nothing held back: only then may a command report "in sync".

        A pending vendor request or a call left in doubt is a difference the vendor
        may not show yet; reporting it as in sync would hide it.
        """
        return not self.actions and not self.pending and not self.errors


class OutcomeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    ALREADY = "already"
    PENDING = "pending"
    FAILED = "failed"
    SKIPPED = "skipped"


class Outcome(Frozen):
    """What happened when an action ran."""

    status: OutcomeStatus
    message: str = ""
    vendor_request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (
            OutcomeStatus.SUCCEEDED,
            OutcomeStatus.ALREADY,
            OutcomeStatus.PENDING,
        )


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class SubjectDecl:
    """A subject the desired state names; naming it makes its license list complete.

    A slotted dataclass, like `Grant`: a large estate declares 100k+ of them.
    """

    subject: Subject
    protected: bool = False
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Location | None = None


class PoolDecl(Frozen):
    """Settings the desired state gives a pool: ownership and price."""

    id: str
    prune: bool = False
    unit_price: float | None = None
    currency: str | None = None
    """ISO 4217 code of `unit_price`: the pool's own, else its provider's."""
    period: str | None = None
    """What `unit_price` pays for (`month`): the pool's own, else its provider's."""
    source: Location | None = None


class Limits(Frozen):
    """How hard reconciler may push one vendor."""

    max_removals: int = 25
    rate_limit: float = 10.0
    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 6
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    retry_budget: float = 60.0
    """Seconds one call may spend retrying (waits and time on the wire). 429s are
    bounded by this alone; `retries` caps the failed attempts that reached the
    vendor (5xx, timeouts, dropped connections)."""


class ProviderDesired(Frozen):
    """Everything the YAML says about one provider."""

    provider: str
    connection: dict[str, Any] = Field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    subjects: tuple[SubjectDecl, ...] = ()
    pools: tuple[PoolDecl, ...] = ()
    limits: Limits = Field(default_factory=Limits)
    source: Location | None = None


class DesiredState(Frozen):
    """The whole desired state, merged from every file given on the command line."""

    providers: dict[str, ProviderDesired] = Field(default_factory=dict)
    paths: tuple[str, ...] = ()
