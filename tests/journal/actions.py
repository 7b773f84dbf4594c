"""Actions to journal: one seat in a pool, as a provider would plan it."""

from __future__ import annotations

from reconciler.model import Action, Call, RequestPreview, Subject


def seat_action(provider: str, pool: str, subject: str = "store-001", verb: str = "assign"
                ) -> Action:
    return Action(
        id=f"{provider}:{verb}:{pool}:{subject}",
        verb=verb,  # type: ignore[arg-type]
        provider=provider,
        pool=pool,
        subject=Subject(kind="entity", id=subject),
        license=pool,
        phase=300,
        reason=f"declared in desired.yaml for {subject}",
        request=RequestPreview(method="POST", url=f"https://vendor.test/{pool}/{subject}"),
        call=Call.to("POST", "pools", pool, "seats", subject),
    )
