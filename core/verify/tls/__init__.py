"""TLS enumeration (issue 4): versions, cipher suites, server order, groups and grades.

    records    parsing what servers send (records, ServerHello, alerts, SSLv2), pure
    hello      our own ClientHellos for SSLv2, SSLv3 and TLS 1.0-1.3, raw bytes
    suites     the IANA cipher-suite registry (data/suites.csv)
    groups     the IANA supported-groups registry (data/groups.csv)
    starttls   SMTP/IMAP/POP3/FTP/PostgreSQL preambles
    handshake  one probe: the only I/O
    enumerate  the scan logic: `enumerate_tls(ip, port, ...) -> TlsProfile`
    assemble   the pure fold of probe results into a TlsProfile
    grade      suite and endpoint grades, Mozilla profile verdicts (data/mozilla.toml)
    model      `TlsProfile` and its parts

`python -m core.verify.tls HOST PORT` runs one enumeration and prints it.
"""

from core.verify.tls.enumerate import enumerate_tls
from core.verify.tls.model import TlsProfile

__all__ = ["TlsProfile", "enumerate_tls"]
