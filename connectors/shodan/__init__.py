"""Shodan: host lookups and network searches through the official `shodan` SDK."""

from connectors.shodan.connector import ShodanConnector

__all__ = ["ShodanConnector"]
