"""Data files for TLS enumeration (suites, groups, Mozilla profiles); each names its source."""
