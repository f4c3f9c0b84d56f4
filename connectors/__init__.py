"""Provider connectors: one folder each, registered in `connectors.registry`."""
