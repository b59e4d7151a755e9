"""Runtime: settings, the object graph (services), the process supervisor, embedded Redis."""
