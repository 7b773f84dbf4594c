"""Toy vendor: robots hold licenses from pools; one PUT or DELETE per robot and license.

Written against the provider interface only, as a third-party vendor package would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Outcome,
    OutcomeStatus,
    PoolState,
    ProviderDesired,
    Subject,
)
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE, Connection, Provider


class ToyConnection(Connection):
    """The key is named by an environment variable, like every secret."""

    key_env: str


class ToyProvider(Provider):
    id = "toyvendor"
    connection_model = ToyConnection
    default_base_url = "https://toy.invalid"
    subject_kinds = frozenset({"robot"})
    path_kinds = frozenset({"robot"})

    connection: ToyConnection

    async def _send(self, call: Call) -> Any:
        key = self.secrets.get(self.connection.key_env)
        return await self.http.send(call, repeatable=True, headers={"X-Key": key})

    async def read(self, desired: ProviderDesired) -> CurrentState:
        response = await self._send(Call.to("GET", "licenses"))
        rows = response.json()["licenses"]
        grants = [
            Grant(provider=self.id, pool=row["id"], subject=Subject(kind="robot", id=holder),
                  license=row["id"])
            for row in rows for holder in row["holders"]
        ]
        pools = [PoolState(provider=self.id, id=row["id"], capacity=row["capacity"],
                           used=len(row["holders"])) for row in rows]
        return CurrentState(provider=self.id, grants=tuple(grants), pools=tuple(pools))

    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        planned = []
        for change in changes:
            grant = change.grant
            removing = change.kind is ChangeKind.REMOVE
            call = Call.to("DELETE" if removing else "PUT", "licenses", grant.license,
                           "holders", grant.subject.id)
            planned.append(Action(
                id=f"toyvendor:{grant.license}:{grant.subject.id}:"
                   f"{'remove' if removing else 'assign'}",
                verb="remove" if removing else "assign", provider=self.id, pool=grant.pool,
                subject=grant.subject, license=grant.license,
                phase=PHASE_FREE if removing else PHASE_TAKE, frees=removing,
                seat_delta=change.seat_delta, reason=change.reason,
                request=self.http.preview(call), changes=(change,), call=call,
            ))
        return planned

    async def execute(self, action: Action) -> Outcome:
        response = await self._send(action.call)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        return Outcome(status=OutcomeStatus.FAILED, message=f"HTTP {response.status_code}")
