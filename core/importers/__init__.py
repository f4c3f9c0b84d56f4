"""Third-party findings: nmap XML, masscan, naabu, Shodan/Censys/Netlas exports, CSV.

`import_file(path, normalizers=...)` detects the format from content and streams
`ImportedClaim`s (an imported Observation + its origin + the original values), filling
an `ImportReport` as it goes. See core.importers.importer.
"""

from core.importers.detect import detect
from core.importers.importer import ImportStream, import_file
from core.importers.records import (
    Format,
    ImportedClaim,
    ImportReport,
    Normalizer,
    Origin,
)

__all__ = [
    "Format",
    "ImportReport",
    "ImportStream",
    "ImportedClaim",
    "Normalizer",
    "Origin",
    "detect",
    "import_file",
]
