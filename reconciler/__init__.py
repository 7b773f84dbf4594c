"""reconciler: declarative, GitOps-style reconciliation of software license assignments."""

__version__ = "0.1.0"
