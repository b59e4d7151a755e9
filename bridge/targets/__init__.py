"""Downstream targets: configuration, attribute mapping, connectors, delivery."""
