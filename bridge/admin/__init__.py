"""Administration of targets and deliveries: the /admin API, its CLI and their shared service."""
