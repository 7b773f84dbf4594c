"""The seam between the vendor-neutral core and each vendor.

A provider is the only code that knows its vendor's URLs, auth and payloads. The
core reaches it through this interface and hands it data (`ProviderDesired`,
`Change`, `Action`); it hands back data (`CurrentState`, `Action`, `Outcome`).

Contract, after pyinfra's facts and operations:
- `read` gathers facts with list calls (never one call per subject where a list
  exists). Everything `check` and `actions` need goes into the returned
  `CurrentState` (grants, pools, and the provider's typed `facts`): a provider
  keeps no facts on `self` between calls, so `check` and `actions` are pure
  functions of (desired, current) and can be tested without HTTP;
- `actions` turns changes into calls, batching where the API allows, and says per
  action whether sending it twice is harmless (`repeatable`). Each action carries
  its one typed request (`Action.call`), built here, once;
- `execute` sends `action.call` as is (adding only credentials) and treats
  "already done" as success. `apply PLANFILE` rebuilds the plan and executes the
  rebuilt actions, so a call never comes from a plan file;
- `confirm` (for crash recovery) tells whether an action's effect is visible now.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from reconciler.errors import Problem
from reconciler.hosts import Hosts
from reconciler.http import VendorHttp
from reconciler.model import (
    Action,
    Change,
    CurrentState,
    Outcome,
    ProviderDesired,
    Subject,
)
from reconciler.secrets import Secrets


@dataclass(frozen=True)
class PendingRequest:
    """A vendor request an earlier apply created and the journal holds as pending."""

    action: Action
    request_id: str


@dataclass(frozen=True)
class Resolution:
    """Where a pending request stands: still `pending`, `executed` or `rejected`; or
    `unknown` when the vendor no longer knows the request (reset, purged): only a
    person can then say whether it was carried out, so the change is held back."""

    request: PendingRequest
    status: Literal["pending", "executed", "rejected", "unknown"]
    message: str = ""


# Phases: lower runs first. Providers with hierarchies use the gaps between them.
PHASE_FREE = 100
PHASE_UPDATE = 200
PHASE_TAKE = 300


class Connection(BaseModel):
    """Base for a provider's connection settings (the YAML `connection:` block).

    Settings that hold secrets or URLs are *names of environment variables*
    (fields ending in `_env`); the values are read at run time and never stored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url_env: str | None = None


def fingerprint(data: Any) -> str:
    """A stable digest of one scope's raw data, for stale-plan detection."""
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


class Provider(ABC):
    """One vendor. Subclasses set `id`, `connection_model`, `default_base_url`."""

    id: ClassVar[str]
    connection_model: ClassVar[type[Connection]]
    default_base_url: ClassVar[str]
    subject_kinds: ClassVar[frozenset[str]]
    path_kinds: ClassVar[frozenset[str]] = frozenset()
    """Subject kinds whose ids travel in URL paths (refused: `/`, and `.`/`..`)."""
    licenses_in_path: ClassVar[bool] = False
    """Whether declared license ids travel in URL paths (a Yext pack id does)."""

    def __init__(self, connection: Connection, http: VendorHttp, secrets: Secrets,
                 *, hosts: Hosts | None = None) -> None:
        self.connection = connection
        self.http = http
        self.secrets = secrets
        self.hosts = hosts or Hosts(http)
        """`http` and, for a vendor with a second API host, that host's own client."""

    @classmethod
    def summary(cls) -> str:
        """One line for `reconciler --help`: the class's docstring, else its module's."""
        import sys

        for text in (cls.__doc__, sys.modules[cls.__module__].__doc__):
            if text and text.strip():
                return text.strip().splitlines()[0]
        return cls.id

    # ---- how declarations map onto pools -------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        """Which pool a declared license draws from. Default: the license is the pool."""
        return license

    @classmethod
    def subject_id_problem(cls, kind: str, subject_id: str) -> str | None:
        """Why the vendor's id format cannot hold this id, or None when it can.

        Called at load time, so a hostile id is a `file:line` error before any call.
        Ids in URL paths are percent-encoded whatever they hold, but many servers
        decode `%2F` and fold `..` before routing: those are refused outright.
        """
        return _path_segment_problem(f"a {kind} id", subject_id, cls.id) \
            if kind in cls.path_kinds else None

    @classmethod
    def license_id_problem(cls, license: str) -> str | None:
        """Why a declared license id cannot be used (same rules as ids in a URL path,
        for providers whose license ids travel in one: `licenses_in_path`)."""
        return _path_segment_problem("a license id", license, cls.id) \
            if cls.licenses_in_path else None

    @classmethod
    def normalize_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The comparable form of a grant's attrs (what `read` reports for the same value).

        Applied to declared grants by the loader, so that an in-sync estate diffs to
        nothing however the YAML spells it (order of lists, empty vs absent).
        """
        return dict(attrs)

    # ---- facts ---------------------------------------------------------------------
    @abstractmethod
    async def read(self, desired: ProviderDesired) -> CurrentState:
        """Current grants, pools and per-scope fingerprints for what `desired` covers."""

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change]) -> list[Problem]:
        """Vendor rules the generic checks cannot know (hierarchies, unknown ids).

        `changes` is the planner's diff (what the plan will add, update and remove):
        a rule on the end state reads it from there instead of re-deriving the
        planner's scope rules (named, protected, pruned, expired, held back).
        """
        return []

    # ---- operations ----------------------------------------------------------------
    @abstractmethod
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        """Calls that carry out `changes`, each with its phase and request preview."""

    @abstractmethod
    async def execute(self, action: Action) -> Outcome:
        """Sends one action. "Already assigned/removed" is success, not failure."""

    async def resolve_pending(self, requests: Sequence[PendingRequest]) -> list[Resolution]:
        """Async vendors: where do requests an earlier apply left pending stand now?

        Called before planning with the journal's still-pending requests of this
        provider. Synchronous vendors never leave any, so the default is empty.
        """
        return []

    async def confirm(self, action: Action) -> bool | None:
        """After a crash: is this action's effect visible at the vendor now?

        None means the provider cannot tell; the caller then re-plans from a fresh read.
        """
        return None

    async def confirm_all(self, actions: Sequence[Action]) -> list[bool | None]:
        """`confirm` for every action left in doubt, in order: what recovery calls.

        The default asks one at a time; a provider whose confirm reads a whole list
        (every user of a domain) overrides it to read that list once for all.
        """
        return [await self.confirm(action) for action in actions]


def _path_segment_problem(what: str, value: str, provider: str) -> str | None:
    """Ids in URL paths are percent-encoded whatever they hold, but many servers decode
    `%2F` and fold `..` before routing: those are refused outright."""
    if "/" in value or "\\" in value:
        return f"{what} cannot contain '/' or '\\' ({provider} puts it in a URL path)"
    if not value.strip("."):
        return f"{what} cannot be only dots ({provider} puts it in a URL path)"
    return None
