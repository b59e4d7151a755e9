"""RQ worker entry points: delivery and reconciliation jobs, lanes, the worker process."""
