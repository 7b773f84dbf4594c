"""Wires the stages together: providers built from the YAML, state read, plan, apply.

This is the only module that knows both the vendor-neutral core and the provider
registry. It owns the I/O edges (HTTP clients, the sandbox, the journal); the
planner and renderers it calls stay pure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.applier import ApplyReport, Listener, apply_plan
from reconciler.config.loader import ProviderSpec, load
from reconciler.connectors import Connector, NetworkConnector
from reconciler.envnames import BASE_URL_SETTING, secret_settings, url_settings
from reconciler.errors import ConfigError, PlanMismatchError, Problem
from reconciler.gcpace import bulk_allocation
from reconciler.http import VendorHttp, new_client, url_problem
from reconciler.journal import Journal
from reconciler.model import (
    Action,
    CurrentState,
    DesiredState,
    OutcomeStatus,
    PendingChange,
    Plan,
    ProviderDesired,
)
from reconciler.planner import build_plan
from reconciler.providers import registry
from reconciler.providers.base import PendingRequest, Provider, Resolution
from reconciler.sealing import plan_differences, unknown_providers
from reconciler.secrets import REDACTOR, Secrets
from reconciler.targeting import Target, narrow_current, narrow_desired, pools_by_provider


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
    ) -> None:
        self.targets = tuple(targets)
        self.target_pools = {
            name: pools for name, pools in pools_by_provider(self.targets).items()
            if pools is not None
        }
        self.desired = narrow_desired(desired, self.targets)
        self.connector: Connector = connector or NetworkConnector()
        self.secrets = secrets or Secrets()
        self.providers: dict[str, Provider] = {}
        self._clients: list[httpx.AsyncClient] = []
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
            client = new_client(endpoint.base_url, endpoint.transport, limits.timeout,
                                limits.concurrency)
            self._clients.append(client)
            self.providers[name] = cls(connection, VendorHttp(client, limits), secrets)
        if problems:
            raise ConfigError(problems)

    async def close(self) -> None:
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

    # ---- planning ------------------------------------------------------------------------
    async def recover(self, journal: Journal | None) -> Recovery:
        """Settles what earlier applies left open: calls in doubt, async requests pending."""
        recovery = Recovery()
        if journal is None:
            return recovery
        for entry in journal.in_doubt():
            action = entry.action()
            provider = self.providers.get(action.provider)
            if provider is None:
                continue
            if action.repeatable:
                # Safe to send again: the fresh read below shows whether it is still needed.
                journal.resolved(action, "replanned",
                                 "interrupted; repeatable, so re-planned from a fresh read")
                recovery.notes.append(
                    f"{action.id}: interrupted call re-planned from a fresh read"
                )
                continue
            seen = await provider.confirm(action)
            if seen is True:
                journal.resolved(action, "succeeded", "confirmed at the vendor after a crash")
                recovery.notes.append(f"{action.id}: interrupted call had taken effect")
            elif seen is False:
                journal.resolved(action, "not-done", "not visible at the vendor after a crash")
                recovery.notes.append(
                    f"{action.id}: interrupted call had no effect; planned again if still needed"
                )
            else:
                recovery.pending.extend(_held(action, "in doubt after a crash", entry.seq))
                recovery.notes.append(
                    f"{action.id}: outcome of an interrupted call is unknown; "
                    "held back until the vendor shows it"
                )
        for name, requests in _by_provider(self.journal_pending(journal)):
            for resolution in await self.providers[name].resolve_pending(requests):
                action = resolution.request.action
                request_id = resolution.request.request_id
                if resolution.status == "pending":
                    recovery.pending.extend(
                        _held(action, f"request {request_id} pending", request_id)
                    )
                    continue
                journal.resolved(action, resolution.status, resolution.message, request_id)
                if resolution.status == "rejected":
                    recovery.notes.append(
                        f"{action.id}: request {request_id} was rejected"
                        f"{': ' + resolution.message if resolution.message else ''}"
                        "; planned again"
                    )
        return recovery

    async def plan(
        self,
        journal: Journal | None = None,
        *,
        today: dt.date | None = None,
        max_removals: int | None = None,
    ) -> Plan:
        recovery = await self.recover(journal)
        currents = {
            name: narrow_current(state, self.target_pools.get(name))
            for name, state in (await self.read()).items()
        }
        plan = build_plan(
            self.desired,
            currents,
            makers={n: p.actions for n, p in self.providers.items()},
            checkers={n: p.check for n, p in self.providers.items()},
            today=today or dt.date.today(),
            max_removals=max_removals,
            extra_pending=recovery.pending,
            notes=recovery.notes,
        )
        return plan.model_copy(update={
            "targets": tuple(str(t) for t in self.targets),
            "sandbox": self.connector.sandboxed,
        })

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
        )
        for change in action.changes
    ]


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
