"""Which YAML a saved plan may load: files inside the checkout it is applied from.

A plan file names its YAML (`config_paths`); an edited file could name YAML
elsewhere on the machine, directly or through a directory inside the checkout
whose files are symlinks to somewhere else. Every path named, and every file
found under a named directory, is resolved (symlinks followed) before the
inside-the-working-directory check, so what is loaded is what was checked.

The names come from an untrusted file, so they are also checked for what the
operating system would choke on (a NUL byte, an over-long name) and refused with
one line rather than a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.config.loader import YAML_SUFFIXES
from reconciler.config.values import shown
from reconciler.errors import ReconcilerError

MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255


class PlanPathError(ReconcilerError):
    """A plan file names YAML that may not be loaded; nothing was read or sent."""


def _usable(name: object) -> str:
    """`name` if the operating system can take it as a path, else a PlanPathError."""
    if not isinstance(name, str) or not name:
        raise PlanPathError(f"the plan file names {shown(name)} as a desired-state file")
    if "\x00" in name or len(name) > MAX_PATH_CHARS or any(
        len(part) > MAX_NAME_CHARS for part in name.split(os.sep)
    ):
        raise PlanPathError(f"the plan file names {shown(name)}, which cannot be a file "
                            "name (a NUL byte, or too long)")
    return name


def _inside(path: Path, here: Path, named: str) -> Path:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # missing, a symlink loop, a bad name
        why = getattr(error, "strerror", None) or "cannot be resolved"
        raise PlanPathError(f"the plan file names {shown(named)}: {why}") from None
    if not real.is_relative_to(here):
        raise PlanPathError(
            f"the plan file names {shown(named)}, which leads to {shown(str(real))} outside "
            f"the working directory {here}; apply plans from the checkout they were made in"
        )
    return real


def confined_files(names: Sequence[object], here: Path) -> list[str]:
    """The YAML files `names` stand for (as the loader will name them), each checked to
    resolve inside `here`.

    The names are kept as written, not replaced by their resolved form: they are the
    `file` of every declaration's source, which the sealed comparison compares.
    """
    here = here.resolve()
    files: list[str] = []
    for name in names:
        named = _usable(name)
        path = here / named
        if _inside(path, here, named).is_dir():
            # Named as the loader's discovery names them: the directory as written,
            # then the path below it.
            found = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES)
            for file in found:
                shown_as = str(Path(named) / file.relative_to(path))
                if _inside(file, here, shown_as).is_file():
                    files.append(shown_as)
        else:
            files.append(named)
    return list(dict.fromkeys(files))
