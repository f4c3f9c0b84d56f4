"""Data files for the verifier (port lists, UDP payloads); each names its provenance."""
