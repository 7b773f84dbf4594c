"""One small hierarchy of errors, each mapped to an exit code once, in `cli.py`.

Messages must be safe to print: providers raise them with secrets already
masked, and the CLI passes every message through the redactor again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.model import Location, ProviderError


class ReconcilerError(Exception):
    """Anything the tool reports to a user instead of a traceback."""


@dataclass(frozen=True)
class Problem:
    """One problem with the desired state, printed as `path:line: message`."""

    location: Location | None
    message: str

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class ConfigError(ReconcilerError):
    """The desired state is invalid; nothing was sent to any vendor."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CapacityError(ConfigError):
    """The end state would need more seats than a pool has."""


class SafetyError(ReconcilerError):
    """A guard rail refused the plan (too many removals, ...)."""


class StalePlanError(ReconcilerError):
    """The vendor state or the YAML changed since the plan was made."""


class PlanMismatchError(StalePlanError):
    """A saved plan says something the YAML and the vendors today do not: nothing is sent."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        shown = differences[:20]
        more = f"\n  … and {len(differences) - 20} more" if len(differences) > 20 else ""
        super().__init__(
            "refusing the saved plan: it differs from the plan the YAML and the vendors give "
            "now, so nothing was sent:\n  " + "\n  ".join(shown) + more
            + "\nRun `reconciler plan` again and review the new plan."
        )


class IncompletePlanError(ReconcilerError):
    """A plan some provider of which could not be read: applying it would act on part of
    the estate as if it were the whole, so it is refused and nothing is sent."""

    def __init__(self, errors: Sequence[ProviderError], what: str) -> None:
        self.errors = tuple(errors)
        listed = "; ".join(f"{e.provider}: {e.message}" for e in errors)
        super().__init__(
            f"refusing to apply: {what} could not read every provider ({listed}); nothing "
            "was sent. Fix the connection, then run `reconciler plan` again."
        )


class PlanAlreadyAppliedError(ReconcilerError):
    """A saved plan applies once: a re-run CI job must not repeat one-shot calls."""


class VendorError(ReconcilerError):
    """A vendor rejected a call or answered in a way we cannot use."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        self.code = code
        self.status = status
        super().__init__(message)


class LockedError(ReconcilerError):
    """Another apply holds the journal's lock."""


class JournalError(ReconcilerError):
    """The journal cannot be read or written; nothing unjournaled is sent to a vendor."""


class JournalSchemaError(JournalError):
    """The journal was written by a newer reconciler (or is not a reconciler journal)."""


class LockLostError(JournalError):
    """A lock this run held is gone (its database connection died): stop sending."""
