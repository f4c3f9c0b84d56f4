"""Censys Platform API v3 connector."""

from connectors.censys.connector import CensysConnector

__all__ = ["CensysConnector"]
