"""The `reconciler` command: parsing and printing only; the work is in `pipeline`.

Exit codes are decided here, once: 0 success / in sync, 1 error or failed action,
2 changes present or held back (`plan --detailed-exitcode`, `drift`). One module per
group of commands; importing them registers them on `main`.
"""

from __future__ import annotations

from reconciler.cli import applying, completion, journaling, planning, sandbox, vendors
from reconciler.cli.common import main

__all__ = ["applying", "completion", "journaling", "main", "planning", "sandbox", "vendors"]
