"""Commvault Command Center provider: `connection` (settings), `facts` (typed reads and
their parsers), `planning` (pure check and actions), `provider` (login, read, send)."""

from reconciler.providers.commvault.connection import CommvaultConnection
from reconciler.providers.commvault.facts import ClientFacts, CommvaultFacts
from reconciler.providers.commvault.provider import CommvaultProvider

__all__ = ["ClientFacts", "CommvaultConnection", "CommvaultFacts", "CommvaultProvider"]
