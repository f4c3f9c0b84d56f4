"""Views and exporters over reconciled services."""
