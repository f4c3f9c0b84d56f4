"""The pipeline stages: ingest -> normalize -> reconcile -> verify -> score -> report.

Each stage is its own module; this package imports none of them, so importing one stage
does not pull in the others.
"""
