"""Netlas connector (plain REST over httpx; the Netlas SDK is not used)."""

from connectors.netlas.connector import NetlasConnector

__all__ = ["NetlasConnector"]
