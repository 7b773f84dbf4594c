"""The Markdown plan (the pull-request comment): content, escaping, and the size limit."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    Grant,
    PendingChange,
    Plan,
    PoolSummary,
    RequestPreview,
    Subject,
    Summary,
)
from reconciler.render.markdown import COMMENT_LIMIT, POOL_ROWS, render_markdown
from reconciler.secrets import REDACTOR

SNAPSHOT = Path(__file__).parent / "snapshots" / "plan.md"
GITHUB_COMMENT_LIMIT = 65_536
FREEING = ("remove", "release")


def action(provider: str, verb: str, subject: str, license: str, reason: str, *,
           pool: str | None = None, kind: str = "user", quantity: int | None = None) -> Action:
    held = Grant(provider=provider, pool=pool or license, license=license,
                 subject=Subject(kind=kind, id=subject), quantity=quantity)
    if quantity is not None:
        change = Change(kind=ChangeKind.UPDATE, after=held, reason=reason)
    elif verb in FREEING:
        change = Change(kind=ChangeKind.REMOVE, before=held, reason=reason)
    else:
        change = Change(kind=ChangeKind.ADD, after=held, reason=reason)
    changes = (change,)
    return Action(id=f"{provider}:{verb}:{subject}:{license}", verb=verb, provider=provider,
                  pool=pool or license, subject=Subject(kind=kind, id=subject), license=license,
                  phase=100, reason=reason, changes=changes,
                  request=RequestPreview(method="POST", url="https://vendor.invalid/x"),
                  call=Call.to("POST", "x"))


def pool(provider: str, name: str, before: int, after: int, capacity: int | None,
         price: float | None = None, currency: str | None = None,
         period: str | None = None) -> PoolSummary:
    return PoolSummary(provider=provider, pool=name, capacity=capacity, used_before=before,
                       used_after=after, seat_delta=after - before, unit_price=price,
                       currency=currency, period=period)


def example_plan() -> Plan:
    actions = (
        action("crm", "remove", "dana@acme.example", "seat-pro",
               "user:dana@acme.example is declared at licenses/crm.yaml:12 without 'seat-pro'"),
        action("crm", "assign", "erin@acme.example", "seat-pro",
               "declared at licenses/crm.yaml:15"),
        action("crm", "assign", "erin@acme.example", "seat_basic",
               "declared at licenses/crm.yaml:16"),
        action("rpa", "allocate", "acme-prod", "orchestrator/UNATT", pool="acme/UNATT",
               kind="tenant", quantity=8,
               reason="quantity 6 → 8 (declared at licenses/rpa.yaml:9)"),
        action("rpa", "release", "old-vm", "robot", kind="device",
               reason="pool 'robot' is pruned (licenses/rpa.yaml:3) and device:old-vm is "
                      "not declared"),
    )
    pools = (
        pool("crm", "seat-pro", 10, 10, 12, 45.0, "USD", "month"),
        pool("crm", "seat_basic", 3, 4, 20, 9.5, "USD", "month"),
        pool("rpa", "acme/UNATT", 6, 8, 10),
        pool("rpa", "robot", 4, 3, 5, 120.0),
    )
    pending = (PendingChange(provider="crm", key=("crm", "seat-pro", "user", "li", "seat-pro"),
                             direction="add", request_id="REQ-17",
                             description="request REQ-17 pending"),)
    return Plan(config_digest="d", summary=Summary(
        counts={"assign": 2, "remove": 1, "release": 1, "allocate": 1}, pools=pools,
        in_sync=41, unmanaged=3), actions=actions, pending=pending,
        notes=("user:ops@acme.example is protected (licenses/crm.yaml:20): keeping 'seat-pro' "
               "although it is not declared",))


def test_the_example_plan_matches_the_snapshot():
    assert render_markdown(example_plan()) == SNAPSHOT.read_text(), (
        "the Markdown plan changed; if on purpose, regenerate tests/unit/snapshots/plan.md "
        "from render_markdown(example_plan())")


def test_summary_counts_seats_and_costs():
    text = render_markdown(example_plan())
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert rows["| crm"] == "| crm | 2 | 1 | 0 | 0 | 0 | +9.50 USD/month |"
    assert rows["| rpa"] == "| rpa | 0 | 0 | 1 | 1 | 0 | -120.00 |"
    # Dollars a month and an unnamed currency are never added up.
    assert rows["| **total**"].endswith("| **-120.00, +9.50 USD/month** |")
    assert "| rpa/acme/UNATT | 6 | 8 | 10 | +2 |  |" in text
    assert "| crm/seat\\_basic | 3 | 4 | 20 | +1 | +9.50 USD/month |" in text


def test_every_removal_and_release_says_why():
    lines = [line for line in render_markdown(example_plan()).splitlines()
             if line.startswith(("- 🔴 `- remove`", "- 🔴 `- release`"))]
    assert len(lines) == 2
    assert all(re.search(r"\): \S", line) for line in lines)


def test_held_back_changes_come_first_and_are_never_called_no_changes():
    plan = example_plan().model_copy(update={"actions": ()})
    text = render_markdown(plan)
    assert "No changes" not in text and "| provider |" not in text
    assert text.startswith("**No new changes; 1 held back (not settled at the vendor yet)**\n")
    assert "REQ-17" in text.split("\n", 1)[1].split("</details>")[0]
    assert "journal --resolve" in text and "ops@acme.example" in text
    converged = plan.model_copy(update={"pending": ()})
    assert render_markdown(converged).startswith(
        "**No changes: licenses match the desired state**\n")


def big_plan(actions: int, pools: int) -> Plan:
    listed = tuple(
        action(f"p{i % 3}", "remove" if i % 2 else "assign", f"user-{i:05}", "L",
               pool=f"pool-{i % pools}",
               reason=f"user:user-{i:05} is declared at big.yaml:{i} without 'L'")
        for i in range(actions))
    summaries = tuple(pool(f"p{i % 3}", f"pool-{i}", 50, 50 - (i % 5), 60, 3.0)
                      for i in range(pools))
    return Plan(config_digest="d", summary=Summary(counts={}, pools=summaries), actions=listed)


def test_a_10k_action_plan_fits_one_comment_and_every_provider_stays_visible():
    plan = big_plan(10_000, 10_000)
    text = render_markdown(plan)
    assert len(text) <= COMMENT_LIMIT < GITHUB_COMMENT_LIMIT
    # Three provider sections and the (folded) seat chart.
    assert text.count("<details>") == text.count("</details>") == 4
    for provider in ("p0", "p1", "p2"):
        assert f"<b>{provider}</b>: 3334 actions" in text or \
            f"<b>{provider}</b>: 3333 actions" in text
    listed = [line for line in text.splitlines() if line.startswith(("- `", "- 🔴 `"))]
    hidden = [int(n) for n in re.findall(r"… (\d+) more actions not listed", text)]
    assert len(hidden) == 3 and len(listed) + sum(hidden) == 10_000
    assert f"{sum(hidden)} of 10000 actions are not listed" in text
    assert all(re.search(r"\): \S", line) for line in listed if "`- remove`" in line)
    # The three providers are the same size, so they share the space evenly.
    sections = [s for s in text.split("<details>")[1:] if not s.startswith("<summary><b>Seat")]
    per_provider = [section.count("\n- `") + section.count("\n- 🔴 `") for section in sections]
    assert max(per_provider) - min(per_provider) <= 2 and min(per_provider) > 50


def test_a_small_section_is_kept_whole_when_a_big_one_is_cut():
    small = tuple(action("tiny", "remove", f"u{i}", "L", f"reason {i}") for i in range(3))
    plan = big_plan(6_000, 10)
    plan = plan.model_copy(update={"actions": plan.actions + small})
    text = render_markdown(plan)
    assert len(text) <= COMMENT_LIMIT
    section = text.split("<b>tiny</b>", 1)[1].split("</details>", 1)[0]
    assert section.count("- 🔴 `- remove`") == 3 and "more actions not listed" not in section


def test_the_pool_table_is_bounded_and_sums_the_rest():
    text = render_markdown(big_plan(30, 1_000))
    rows = [line for line in text.splitlines() if line.startswith("| p") and "/pool-" in line]
    assert len(rows) == POOL_ROWS
    assert all(row.split(" | ")[4] == "-4" for row in rows)  # the biggest changes first
    rest = next(line for line in text.splitlines() if "more pools_" in line)
    shown = POOL_ROWS * -4
    total = sum(-(i % 5) for i in range(1_000))
    assert rest.startswith(f"| _{1_000 - POOL_ROWS} more pools_ |")
    assert f"| {total - shown:+d} | {3.0 * (total - shown):+.2f} |" in rest


def test_names_from_vendors_cannot_break_the_layout():
    hostile = "x</details><script>alert(1)</script>\n\n## No changes | `tick`"
    plan = Plan(config_digest="d", summary=Summary(counts={}, pools=(
        pool("crm", hostile, 1, 0, 1),)), actions=(
        action("crm", "remove", hostile, f"lic`{hostile}", f"because {hostile}",
               pool=hostile),), notes=(hostile,))
    text = render_markdown(plan)
    # Inside a code span HTML is shown, not run; everywhere else it is escaped.
    outside_code = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "CODE", text)
    # One provider section and the seat chart: the hostile name closed neither.
    assert "<script>" not in outside_code and outside_code.count("</details>") == 2
    assert "\n## No changes" not in text
    table = [line for line in text.splitlines() if line.startswith("| crm/")]
    assert len(table) == 1 and table[0].count(" | ") == 5 and "\\|" in table[0]
    removal = next(line for line in text.splitlines() if line.startswith("- 🔴 `- remove`"))
    assert "``lic`x&lt;" not in removal and "`` - lic`x" in removal


def test_secrets_are_masked():
    REDACTOR.register("canary-secret-5d1f0c")
    plan = example_plan()
    leaky = plan.actions[0].model_copy(update={"reason": "token canary-secret-5d1f0c refused"})
    text = render_markdown(plan.model_copy(update={"actions": (leaky, *plan.actions[1:])}))
    assert "canary-secret-5d1f0c" not in text and "token *** refused" in text


def test_a_tiny_limit_is_still_respected_and_sections_closed():
    text = render_markdown(big_plan(500, 500), limit=2_000)
    assert len(text) <= 2_000
    assert text.count("<details>") == text.count("</details>")
    assert "truncated" in text
