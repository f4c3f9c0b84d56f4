"""InternetDB: Shodan's free, keyless per-address summary (ports, CPEs, tags, CVE ids)."""

from connectors.internetdb.connector import InternetDBConnector

__all__ = ["InternetDBConnector"]
