"""Wires the stages together: providers built from the YAML, state read, plan, apply.

This is the only module that knows both the vendor-neutral core and the provider
registry. It owns the I/O edges (HTTP clients, the sandbox, the journal); the
planner and renderers it calls stay pure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.applier import ApplyReport, Listener, apply_plan
from reconciler.config.loader import ProviderSpec, load
from reconciler.connectors import Connector, NetworkConnector
from reconciler.envnames import BASE_URL_SETTING, secret_settings, url_settings
from reconciler.errors import (
    ConfigError,
    IncompletePlanError,
    PlanMismatchError,
    Problem,
    VendorError,
)
from reconciler.gcpace import bulk_allocation
from reconciler.hosts import Hosts, HttpFactory
from reconciler.http import VendorHttp, new_client, origin_of, url_problem
from reconciler.journal import Journal
from reconciler.model import (
    Action,
    CurrentState,
    DesiredState,
    Limits,
    OutcomeStatus,
    PendingChange,
    Plan,
    ProviderDesired,
    ProviderError,
)
from reconciler.offloop import off_loop
from reconciler.planner import ProviderPlan, build_plan, config_digest, plan_provider
from reconciler.providers import registry
from reconciler.providers.base import PendingRequest, Provider, Resolution
from reconciler.sealing import plan_differences, unknown_providers
from reconciler.secrets import REDACTOR, Secrets
from reconciler.targeting import (
    Target,
    check_target_pools,
    narrow_current,
    narrow_desired,
    pools_by_provider,
)

log = logging.getLogger(__name__)


def provider_specs() -> dict[str, ProviderSpec]:
    return {
        name: ProviderSpec(
            connection_model=cls.connection_model,
            subject_kinds=cls.subject_kinds,
            pool_of=cls.pool_of,
            normalize_attrs=cls.normalize_attrs,
            subject_id_problem=cls.subject_id_problem,
            license_id_problem=cls.license_id_problem,
        )
        for name, cls in registry().items()
    }


def load_desired(paths: Sequence[str]) -> DesiredState:
    with bulk_allocation():
        return load(paths, provider_specs())


@dataclass
class Recovery:
    """What the journal says must be held back or reported before planning."""

    pending: list[PendingChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """Provider → why its open calls could not be settled (its vendor did not answer):
    that provider is left out of the plan, the others go on."""


def _other_host(transport: httpx.AsyncBaseTransport | None, limits: Limits,
                origins: dict[str, str]) -> HttpFactory:
    """How a provider's client for another of its vendor's hosts is made: as its first."""
    def make(base_url: str) -> VendorHttp:
        return VendorHttp(new_client(base_url, transport, limits.timeout, limits.concurrency),
                          limits, origins=origins)

    return make


class Session:
    """Providers for one desired state, with their HTTP clients open."""

    def __init__(
        self,
        desired: DesiredState,
        *,
        connector: Connector | None = None,
        secrets: Secrets | None = None,
        on_read: Callable[[str, CurrentState, float], None] | None = None,
        targets: Sequence[Target] = (),
        parallelism: int | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self.parallelism = parallelism
        """Calls in flight per provider for this run (`--parallelism`), instead of each
        YAML's `limits.concurrency`. A run setting, not desired state: it is applied to
        the clients only, so the plan and its digest do not depend on it."""
        self.target_pools = {
            name: pools for name, pools in pools_by_provider(self.targets).items()
            if pools is not None
        }
        self.desired = narrow_desired(desired, self.targets)
        self.connector: Connector = connector or NetworkConnector()
        self.secrets = secrets or Secrets()
        self.providers: dict[str, Provider] = {}
        self.origins: dict[str, dict[str, str]] = {}
        """Provider → its hosts (`scheme://host:port`) → where each URL came from."""
        self._clients: list[httpx.AsyncClient] = []
        self._hosts: list[Hosts] = []
        self.on_read = on_read
        """Told when each provider's read finishes (progress for long reads)."""

    async def __aenter__(self) -> Session:
        try:
            self.open()
        except BaseException:
            await self.close()  # clients opened before the problem was found
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def open(self) -> None:
        classes = registry()
        problems: list[Problem] = []
        for name, desired in sorted(self.desired.providers.items()):
            cls = classes[name]
            connection = cls.connection_model.model_validate(desired.connection)
            endpoint = self.connector.endpoint(name, cls.default_base_url, desired.connection,
                                               self.secrets)
            secrets = endpoint.secrets
            problems.extend(_missing_secrets(desired.connection, secrets, desired.source))
            if endpoint.check_urls:
                bad_urls = _bad_urls(name, desired, endpoint.base_url, secrets)
                if bad_urls:
                    problems.extend(bad_urls)
                    continue
            limits = desired.limits
            if self.parallelism is not None:
                limits = limits.model_copy(update={"concurrency": self.parallelism})
            client = new_client(endpoint.base_url, endpoint.transport, limits.timeout,
                                limits.concurrency)
            self._clients.append(client)
            self.origins[name] = _origins(desired.connection, endpoint.base_url, secrets,
                                          self.connector.sandboxed)
            hosts = Hosts(VendorHttp(client, limits, origins=self.origins[name]),
                          _other_host(endpoint.transport, limits, self.origins[name]))
            self._hosts.append(hosts)
            self.providers[name] = cls(connection, hosts.primary, secrets, hosts=hosts)
        if problems:
            raise ConfigError(problems)

    async def close(self) -> None:
        for hosts in self._hosts:
            await hosts.aclose()
        self._hosts.clear()
        for client in self._clients:
            await client.aclose()
        self._clients.clear()

    # ---- reading -------------------------------------------------------------------------
    async def read(self, names: Sequence[str] | None = None) -> dict[str, CurrentState]:
        """Reads every provider concurrently (each bounded by its own limits)."""
        chosen = sorted(names if names is not None else self.providers)

        async def one(name: str) -> CurrentState:
            started = time.monotonic()
            state = await self.providers[name].read(self.desired.providers[name])
            if self.on_read is not None:
                self.on_read(name, state, time.monotonic() - started)
            return state

        states = await asyncio.gather(*(one(name) for name in chosen))
        return dict(zip(chosen, states, strict=True))

    async def read_each(
        self, names: Sequence[str],
        then: Callable[[str, CurrentState], Awaitable[None]] | None = None,
    ) -> tuple[dict[str, CurrentState], dict[str, str]]:
        """Like `read`, but a vendor that fails to answer fails alone: its error (naming
        the provider's host) is returned instead of stopping the other providers.
        `then` is awaited with each state as soon as it is read."""
        chosen = sorted(names)

        async def one(name: str) -> CurrentState | str:
            try:
                state = (await self.read([name]))[name]
            except VendorError as error:
                return self.failure(name, error)
            if then is not None:
                await then(name, state)
            return state

        results = await asyncio.gather(*(one(name) for name in chosen))
        states = {n: r for n, r in zip(chosen, results, strict=True) if not isinstance(r, str)}
        errors = {n: r for n, r in zip(chosen, results, strict=True) if isinstance(r, str)}
        return states, errors

    def failure(self, name: str, error: VendorError) -> str:
        """The error's text, with the provider's host when the text does not name it."""
        text = str(error)
        hosts = list(self.origins.get(name, {}))
        if hosts and not any(host in text for host in hosts):
            text = f"{text} (vendor at {hosts[0]})"
        return REDACTOR.text(text)

    # ---- planning ------------------------------------------------------------------------
    async def recover(self, journal: Journal | None) -> Recovery:
        """Settles what earlier applies left open: calls in doubt, async requests pending.

        A vendor that cannot answer (down, refusing) is recorded in `errors` and its
        other open calls are left as they are: the other providers go on.
        """
        recovery = Recovery()
        if journal is None:
            return recovery
        doubtful: dict[str, list[tuple[Action, int]]] = {}
        for entry in journal.in_doubt():
            action = entry.action()
            if action.provider not in self.providers:
                continue
            if action.repeatable:
                # Safe to send again: the fresh read below shows whether it is still needed.
                journal.resolved(action, "replanned",
                                 "interrupted; repeatable, so re-planned from a fresh read")
                recovery.notes.append(
                    f"{action.id}: interrupted call re-planned from a fresh read"
                )
                continue
            doubtful.setdefault(action.provider, []).append((action, entry.seq))
        for name, entries in sorted(doubtful.items()):
            try:
                verdicts = await self.providers[name].confirm_all([a for a, _ in entries])
            except VendorError as error:
                recovery.errors[name] = self.failure(name, error)
                continue
            for (action, seq), seen in zip(entries, verdicts, strict=True):
                self._settle_doubt(journal, recovery, action, seq, seen)
        await self._resolve_journal_pending(journal, recovery)
        return recovery

    def _settle_doubt(self, journal: Journal, recovery: Recovery, action: Action, seq: int,
                      seen: bool | None) -> None:
        """Records what the vendor showed for one call left in doubt."""
        if seen is True:
            journal.resolved(action, "succeeded", "confirmed at the vendor after a crash")
            recovery.notes.append(f"{action.id}: interrupted call had taken effect")
        elif seen is False:
            journal.resolved(action, "not-done", "not visible at the vendor after a crash")
            recovery.notes.append(
                f"{action.id}: interrupted call had no effect; planned again if still needed"
            )
        else:
            recovery.pending.extend(_held(action, "in doubt after a crash", seq))
            recovery.notes.append(
                f"{action.id}: outcome of an interrupted call is unknown; "
                "held back until the vendor shows it"
            )

    async def _resolve_journal_pending(self, journal: Journal, recovery: Recovery) -> None:
        """Asks each async vendor where the requests earlier applies filed stand now."""
        for name, requests in _by_provider(self.journal_pending(journal)):
            if name in recovery.errors:
                continue
            try:
                resolutions = await self.providers[name].resolve_pending(requests)
            except VendorError as error:
                recovery.errors[name] = self.failure(name, error)
                continue
            for resolution in resolutions:
                action = resolution.request.action
                request_id = resolution.request.request_id
                if resolution.status == "pending":
                    recovery.pending.extend(
                        _held(action, f"request {request_id} pending", request_id)
                    )
                    continue
                if resolution.status == "unknown":
                    # The vendor forgot it (a reset, a purge): only a person can say whether
                    # it was carried out. Held back, with the command that settles it.
                    recovery.pending.extend(_held(
                        action, f"request {request_id} unknown to the vendor"
                        f"{' (' + resolution.message + ')' if resolution.message else ''}; "
                        f"check the vendor, then `reconciler journal --resolve {action.id} "
                        "done|not-done`", request_id))
                    continue
                journal.resolved(action, resolution.status, resolution.message, request_id)
                if resolution.status == "rejected":
                    recovery.notes.append(
                        f"{action.id}: request {request_id} was rejected"
                        f"{': ' + resolution.message if resolution.message else ''}"
                        "; planned again"
                    )

    async def plan(
        self,
        journal: Journal | None = None,
        *,
        today: dt.date | None = None,
        max_removals: int | None = None,
    ) -> Plan:
        """The plan of every provider that could be read; those that could not are in
        `errors` (the plan then cannot be applied, but the others are still shown).

        The config digest (seconds of CPU at 100k grants) is worked out on a thread while
        the vendors are read: reading mostly waits on the network, so the two overlap.
        """
        digesting = asyncio.ensure_future(asyncio.to_thread(config_digest, self.desired))
        try:
            return await self._plan(digesting, journal, today=today,
                                    max_removals=max_removals)
        finally:
            await asyncio.gather(digesting, return_exceptions=True)

    async def _plan(
        self,
        digesting: asyncio.Future[str],
        journal: Journal | None,
        *,
        today: dt.date | None,
        max_removals: int | None,
    ) -> Plan:
        recovery = await self.recover(journal)
        today = today or dt.date.today()
        parts: dict[str, ProviderPlan] = {}

        async def plan_ahead(name: str, state: CurrentState) -> None:
            current = narrow_current(state, self.target_pools.get(name))
            try:
                parts[name] = await off_loop(self._plan_ahead, name, current, today,
                                             recovery.pending)
            except Exception:
                # Left to `build_plan`, which works this provider out again after every
                # provider's checks and raises where a plan always raised.
                log.debug("planning %s ahead failed; planned with the others", name,
                          exc_info=True)

        states, read_errors = await self.read_each(
            [name for name in self.providers if name not in recovery.errors], plan_ahead)
        errors = {**recovery.errors, **read_errors}
        check_target_pools(self.desired, states, self.targets)
        currents = {
            name: narrow_current(state, self.target_pools.get(name))
            for name, state in states.items()
        }
        readable = self.desired.model_copy(update={"providers": {
            name: provider for name, provider in self.desired.providers.items()
            if name in currents}})
        plan = build_plan(
            readable,
            currents,
            makers={n: p.actions for n, p in self.providers.items()},
            checkers={n: p.check for n, p in self.providers.items()},
            today=today,
            max_removals=max_removals,
            extra_pending=[p for p in recovery.pending if p.provider in currents],
            notes=recovery.notes,
            # The digest pins the whole YAML, not the part that could be read.
            digest=await digesting,
            parts=parts,
        )
        return plan.model_copy(update={
            "targets": tuple(str(t) for t in self.targets),
            "sandbox": self.connector.sandboxed,
            "config_paths": self.desired.paths,
            "errors": tuple(ProviderError(provider=name, message=message)
                            for name, message in sorted(errors.items())),
        })

    def _plan_ahead(self, name: str, current: CurrentState, today: dt.date,
                    pending: Sequence[PendingChange]) -> ProviderPlan:
        """One provider's diff, checks and (when they pass) actions, from its read alone:
        worked out on a thread while the other vendors are still being read."""
        provider = self.providers[name]
        part = plan_provider(name, self.desired.providers[name], current, provider.check,
                             today=today, extra_pending=pending)
        if not part.problems and not part.capacity_problems and part.diff.changes:
            part.actions = provider.actions(part.diff.changes, current)
        return part

    async def rebuild(
        self,
        saved: Plan,
        journal: Journal,
        *,
        today: dt.date | None = None,
        max_removals: int | None = None,
    ) -> Plan:
        """The plan to apply for a saved plan file: rebuilt, and equal to it, or refused.

        Every rail (protected subjects, max-removals, capacity, the vendors' own
        checks) runs again on the rebuilt plan, and only the rebuilt actions are ever
        sent: the saved file is compared, never executed.
        """
        refuse_incomplete(saved, "the plan file")
        made_on = "the sandbox" if saved.sandbox else "real vendors"
        if saved.sandbox != self.connector.sandboxed:
            raise PlanMismatchError([f"the plan was made against {made_on}; apply it the same "
                                     "way (with or without --sandbox)"])
        targets = tuple(str(target) for target in self.targets)
        if tuple(saved.targets) != targets:
            raise PlanMismatchError([
                f"the plan was made for --target {' '.join(saved.targets) or '(everything)'}, "
                f"not {' '.join(targets) or '(everything)'}"
            ])
        unknown = unknown_providers(saved, self.providers)
        if unknown:
            raise PlanMismatchError(
                [f"the plan file names provider '{name}', which the YAML does not configure"
                 for name in unknown]
            )
        rebuilt = await self.plan(journal, today=today, max_removals=max_removals)
        refuse_incomplete(rebuilt, "rebuilding the plan")
        differences = plan_differences(saved, rebuilt)
        if differences:
            raise PlanMismatchError(differences)
        return rebuilt

    async def apply(
        self, plan: Plan, journal: Journal, listener: Listener | None = None
    ) -> ApplyReport:
        return await apply_plan(plan, self.providers, journal, listener)

    async def wait_for_pending(
        self,
        report: ApplyReport,
        journal: Journal,
        *,
        timeout: float,
        poll: float = 2.0,
        listener: Callable[[Resolution], None] | None = None,
    ) -> list[Resolution]:
        """Polls async vendors until the requests this apply created are settled.

        Returns the final word on each request; those still pending at the deadline
        come back as "pending" (the next plan keeps holding them back).
        """
        waiting = [
            PendingRequest(action=action, request_id=outcome.vendor_request_id)
            for action, outcome in report.results
            if outcome.status is OutcomeStatus.PENDING and outcome.vendor_request_id
        ]
        return await self.wait_for(waiting, journal, timeout=timeout, poll=poll,
                                   listener=listener)

    def journal_pending(self, journal: Journal) -> list[PendingRequest]:
        """Requests earlier applies left pending at this session's vendors."""
        return [
            PendingRequest(action=entry.action(), request_id=entry.vendor_request_id)
            for entry in journal.pending()
            if entry.vendor_request_id and entry.provider in self.providers
        ]

    async def wait_for(
        self,
        waiting: list[PendingRequest],
        journal: Journal,
        *,
        timeout: float,
        poll: float = 2.0,
        listener: Callable[[Resolution], None] | None = None,
    ) -> list[Resolution]:
        """Polls async vendors until these requests are settled or `timeout` passes."""
        settled: list[Resolution] = []
        deadline = time.monotonic() + timeout
        while waiting:
            still: list[PendingRequest] = []
            for name, requests in _by_provider(waiting):
                for resolution in await self.providers[name].resolve_pending(requests):
                    if resolution.status == "pending":
                        still.append(resolution.request)
                        continue
                    if resolution.status != "unknown":  # forgotten: a person settles it
                        journal.resolved(resolution.request.action, resolution.status,
                                         resolution.message, resolution.request.request_id)
                    settled.append(resolution)
                    if listener is not None:
                        listener(resolution)
            waiting = still
            if waiting and time.monotonic() + poll > deadline:
                settled.extend(Resolution(request=r, status="pending") for r in waiting)
                break
            if waiting:
                await asyncio.sleep(poll)
        return settled


def refuse_incomplete(plan: Plan, what: str) -> None:
    """A plan missing a provider that could not be read is never applied."""
    if plan.errors:
        raise IncompletePlanError(plan.errors, what)


def _by_provider(requests: Sequence[PendingRequest]) -> list[tuple[str, list[PendingRequest]]]:
    """Requests grouped per provider, in provider order: each vendor is asked once."""
    grouped: dict[str, list[PendingRequest]] = {}
    for request in requests:
        grouped.setdefault(request.action.provider, []).append(request)
    return sorted(grouped.items())


def _held(action: Action, description: str, request_id: object) -> list[PendingChange]:
    return [
        PendingChange(
            provider=action.provider,
            key=change.grant.key,
            direction=change.kind.value,
            request_id=str(request_id),
            description=description,
            quantity=change.seat_delta,
        )
        for change in action.changes
    ]


def _origins(connection: Mapping[str, Any], base_url: str, secrets: Secrets,
             sandboxed: bool) -> dict[str, str]:
    """Each host a provider talks to → where its URL came from, for errors that say what
    to fix: `from YEXT_BASE_URL`, `the vendor's default URL`, the in-process sandbox."""
    if sandboxed:  # every host of the vendor is its simulator in this process
        return {origin_of(base_url): "the in-process sandbox"}
    variable = connection.get(BASE_URL_SETTING)
    named = isinstance(variable, str) and bool(secrets.optional(variable, ""))
    origins = {origin_of(base_url): f"from {variable}" if named else "the vendor's default URL"}
    for key, other in url_settings(connection).items():
        value = secrets.optional(other, "") if key != BASE_URL_SETTING else ""
        if value:
            origins.setdefault(origin_of(value), f"from {other}")
    return origins


def _bad_urls(
    name: str, desired: ProviderDesired, base_url: str, secrets: Secrets
) -> list[Problem]:
    """Every URL setting must hold an http(s) URL: a config error, not an httpx traceback.

    Passwords in a URL's userinfo are registered for masking on the way.
    """
    where = desired.source or next((s.source for s in desired.subjects if s.source), None)
    urls = {BASE_URL_SETTING: base_url}
    for key, variable in url_settings(desired.connection).items():
        value = secrets.optional(variable, "") if key != BASE_URL_SETTING else ""
        if value:
            urls[key] = value
    problems: list[Problem] = []
    for key, url in urls.items():
        REDACTOR.register_url(url)
        why = url_problem(url)
        if why is not None:
            named = desired.connection.get(key)
            origin = f"{named}={url!r}" if named else repr(url)
            problems.append(
                Problem(where, REDACTOR.text(f"{name}: connection.{key}: {origin} {why}"))
            )
    return problems


def _missing_secrets(connection: Mapping[str, Any], secrets: Secrets, where: Any) -> list[Problem]:
    """Every `*_env` setting must name a set variable (base URLs may fall back)."""
    problems: list[Problem] = []
    for variable in secret_settings(connection).values():
        try:
            secrets.get(variable, where=where)
        except ConfigError as error:
            problems.extend(error.problems)
    return problems
