"""portintel's provider-agnostic engine. Imports nothing from `connectors` or `cli`."""
