"""reconciler: declarative, GitOps-style reconciliation of software license assignments."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "license-reconciler"
"""The name it is installed under (`reconciler` on PyPI is an unrelated project)."""

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
