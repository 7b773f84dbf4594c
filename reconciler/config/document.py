"""The desired-state document as pydantic models: the YAML format's one definition.

The same models validate files and generate the JSON Schema editors use, so
the format cannot drift from its schema. Vendor connection settings are kept as
a raw mapping here and validated by the provider's own model in the loader,
because this module must not know any vendor.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SUBJECT_FIELDS = ("protected", "attrs", "licenses")
"""Keys of a subject entry besides its one kind key (`entity: store-001`)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LicenseSpec(Strict):
    """A license with details; a bare string in YAML means `{id: <string>}`."""

    id: str = Field(min_length=1, description="License id: a pack, SKU, code, license name...")
    quantity: int | None = Field(default=None, ge=0, description="For allocations: a count")
    expires: dt.date | None = Field(default=None, description="Scheduled removal date")
    attrs: dict[str, Any] = Field(default_factory=dict, description="Vendor detail")


class SubjectEntry(BaseModel):
    """One subject, named by its kind (`entity: store-001`), and its complete license list.

    The kind key is whatever the provider manages (`Provider.subject_kinds`): this
    model accepts one extra key and the loader checks it against the provider, so a
    vendor with a new kind of subject needs no change here.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    protected: bool = Field(default=False, description="Never remove a license from it")
    attrs: dict[str, Any] = Field(default_factory=dict, description="Vendor detail")
    licenses: list[Annotated[str, Field(min_length=1)] | LicenseSpec] = Field(
        default_factory=list,
        description="The complete list: anything else it holds is removed (unless protected)",
    )

    @property
    def kinds(self) -> dict[str, Any]:
        """The entry's kind keys (exactly one in a valid file; the loader checks)."""
        return dict(self.model_extra or {})


Currency = Annotated[str, Field(
    pattern=r"^[A-Z]{3}$", description="ISO 4217 code of unit_price (USD, EUR...), for cost",
)]
Period = Literal["day", "week", "month", "quarter", "year"]


class PoolSettings(Strict):
    prune: bool = Field(
        default=False, description="Make the whole pool authoritative: remove undeclared holders"
    )
    unit_price: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Price per seat, for cost"
    )
    currency: Currency | None = Field(
        default=None, description="Currency of unit_price (default: the provider's currency)"
    )
    period: Period | None = Field(
        default=None, description="What unit_price pays for (default: the provider's period)"
    )


class LimitsSpec(Strict):
    """How hard reconciler may push one vendor. Bounds keep a typo from becoming a
    client that never sends (a rate of 1e-9/s) or floods (concurrency 10^6); types
    are strict so `rate_limit: yes` is an error, not 1 call per second."""

    max_removals: int | None = Field(
        default=None, ge=0, strict=True, description="Refuse bigger plans"
    )
    rate_limit: float | None = Field(
        default=None, ge=0.01, le=100_000, strict=True, allow_inf_nan=False,
        description="Calls per second (fractions allowed: 0.5 is one call every 2 s); "
        "lowered automatically while the vendor answers 429",
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=256, strict=True, description="Calls in flight"
    )
    timeout: float | None = Field(
        default=None, gt=0, le=3600, strict=True, allow_inf_nan=False,
        description="Seconds to wait for a call",
    )
    retries: int | None = Field(
        default=None, ge=1, le=20, strict=True,
        description="Failed attempts (5xx, timeouts, dropped connections) per call; "
        "429s count against retry_budget only",
    )
    retry_budget: float | None = Field(
        default=None, gt=0, le=3600, strict=True, allow_inf_nan=False,
        description="Seconds one call may spend retrying, Retry-After waits included",
    )
    backoff_initial: float | None = Field(
        default=None, ge=0, le=600, strict=True, allow_inf_nan=False,
        description="First retry wait (s)",
    )
    backoff_max: float | None = Field(
        default=None, ge=0, le=3600, strict=True, allow_inf_nan=False,
        description="Longest retry wait (s)",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> LimitsSpec:
        first, longest = self.backoff_initial, self.backoff_max
        if first is not None and longest is not None and first > longest:
            raise ValueError(f"backoff_initial ({first}) is longer than backoff_max ({longest})")
        return self


class ProviderBlock(Strict):
    connection: dict[str, Any] | None = Field(
        default=None, description="Vendor settings; secrets are named by *_env variables"
    )
    limits: LimitsSpec | None = None
    currency: Currency | None = Field(
        default=None, description="Currency of this provider's pool prices (unit_price)"
    )
    period: Period | None = Field(
        default=None, description="What this provider's pool prices pay for: a seat per period"
    )
    pools: dict[str, PoolSettings] = Field(default_factory=dict)
    subjects: list[SubjectEntry] = Field(default_factory=list)


class Document(Strict):
    """A desired-state file (or one `---` document of it)."""

    version: int = Field(default=1, ge=1, le=1)
    providers: dict[str, ProviderBlock] = Field(default_factory=dict)
