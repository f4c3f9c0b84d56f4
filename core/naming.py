"""Canonical service names, so that sources which spell a service differently agree.

Shodan says `https` or `dns-udp` (its crawler module), Censys `HTTP`, Netlas `http` with a
separate TLS flag. Reconciliation compares canonical names: TLS is a property of the
endpoint (its TlsSummary), not a different service.
"""

from __future__ import annotations

_ALIASES = {
    "https": "http",
    "http-simple-new": "http",
    "http-alt": "http",
    "http-proxy": "http",
    "www": "http",
    "ssl/http": "http",
    "domain": "dns",
    "dns-tcp": "dns",
    "dns-udp": "dns",
    "smtps": "smtp",
    "submission": "smtp",
    "imaps": "imap",
    "pop3s": "pop3",
    "ftps": "ftp",
    "mariadb": "mysql",
    "postgres": "postgresql",
    "pgsql": "postgresql",
    "ms-wbt-server": "rdp",
    "microsoft-ds": "smb",
    "netbios-ssn": "smb",
    "snmp-udp": "snmp",
    "ntp-udp": "ntp",
    "mongo": "mongodb",
    "elastic": "elasticsearch",
    "memcache": "memcached",
    "kubernetes-api": "kubernetes",
    "docker-api": "docker",
    "amqp": "rabbitmq",
    "rfb": "vnc",
}

_MEANINGLESS = {"", "unknown", "auto", "none", "null", "tcpwrapped", "banner_grab"}


def canonical_service(name: str | None) -> str | None:
    """The canonical lower-case name for a provider's service label, or None if it says nothing."""
    if name is None:
        return None
    key = name.strip().lower().replace("_", "-")
    if key in _MEANINGLESS:
        return None
    for suffix in ("-udp", "-tcp"):
        if key.endswith(suffix) and key[: -len(suffix)] in _ALIASES.values():
            key = key[: -len(suffix)]
    return _ALIASES.get(key, key)
