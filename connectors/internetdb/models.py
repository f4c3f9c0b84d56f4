"""InternetDB's one response shape: `GET /{ip}` -> the ports, CPEs, hostnames, tags and CVE
ids Shodan last saw for the address. No banners, no transport, no times.

`ip` and `ports` are what a record is for, so they are required; the lists around them may
be missing (treated as empty), and unknown fields are ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HostRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    ip: str
    ports: list[int]
    cpes: list[str] = Field(default_factory=list)  # CPE 2.2 URIs ("cpe:/a:...")
    hostnames: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    vulns: list[str] = Field(default_factory=list)  # CVE ids, without CVSS
