"""The example desired state shipped inside the package, so the demo needs no checkout.

One copy only: `examples/desired-state` in the repository is a link to this folder, so
the README's demo, the tests, `sandbox serve` (no PATH) and `sandbox init` all read the
same files. The wheel installs them as plain files beside this module.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.importer import MODELINE

EXAMPLE_DIR = Path(__file__).resolve().parent / "example"
DEFAULT_INIT_DIR = Path("desired-state")
_MODELINE_PREFIX = "# yaml-language-server:"


def example_files() -> list[Path]:
    """The example's YAML files, one per vendor, in name order."""
    return sorted(EXAMPLE_DIR.glob("*.yaml"))


def existing_targets(target: Path) -> list[Path]:
    """The files `write_example(target)` would overwrite."""
    return [target / source.name for source in example_files()
            if (target / source.name).exists()]


def write_example(target: Path) -> list[Path]:
    """Copies the example into `target` (created if missing) and returns what it wrote.

    The editor modeline is rewritten to expect the schema beside the files (as `import`
    does): the packaged one points into the repository, which a user's folder is not.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in example_files():
        text = source.read_text(encoding="utf-8")
        if text.startswith(_MODELINE_PREFIX):
            text = MODELINE + text.split("\n", 1)[1]
        destination = target / source.name
        destination.write_text(text, encoding="utf-8")
        written.append(destination)
    return written
