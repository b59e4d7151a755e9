"""What an operator sees of the bridge: metrics, logs, request ids, health, audit trail."""
