"""The bridge's Redis connection pool: redis-py's, without per-command bookkeeping it
does not use.

redis-py 8 records OpenTelemetry connection counts (four calls, each naming the pool
afresh) and dispatches an ``AfterConnectionReleasedEvent`` (for streaming credential
providers' re-authentication) every time a command takes and returns a connection, even
with observability off and no such provider. That is about a third of the client's CPU
for a one-command request; a SCIM request makes one or two commands and a delivery
several. The bridge authenticates with the password of ``REDIS_URL`` and exports no
OpenTelemetry, so :class:`LeanConnectionPool` takes and returns connections as redis-py
does (fork check, lock, connect, stale-data check) without the rest.
"""

from __future__ import annotations

from typing import Any

import redis


class LeanConnectionPool(redis.ConnectionPool):
    """A ``redis.ConnectionPool`` whose take and return skip observability and events."""

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection, ready to send (redis-py's checks, nothing more)."""
        self._checkpid()
        with self._lock:
            try:
                connection = self._available_connections.pop()
            except IndexError:
                connection = self.make_connection()
            self._in_use_connections.add(connection)
        try:
            connection.connect()
            try:
                # data left unread by an interrupted command, or a socket Redis closed
                if connection.can_read() and self._stale_data_matters():
                    raise redis.ConnectionError("Connection has data")
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                connection.disconnect()
                connection.connect()
                if connection.can_read() and self._stale_data_matters():
                    raise redis.ConnectionError("Connection not ready") from None
        except BaseException:
            self.release(connection)
            raise
        return connection

    def _stale_data_matters(self) -> bool:
        # as redis-py: a client-side cache or maintenance notifications read pushes instead
        return self.cache is None and not self.maint_notifications_enabled()  # type: ignore[no-untyped-call]

    def release(self, connection: Any) -> None:
        """Give ``connection`` back; one the pool does not own is closed instead."""
        self._checkpid()
        with self._lock:
            try:
                self._in_use_connections.remove(connection)
            except KeyError:
                return  # not ours, or already returned
            if self.owns_connection(connection):
                if connection.should_reconnect():
                    connection.disconnect()
                self._available_connections.append(connection)
                return
            connection.disconnect()
            if connection.pid == self.pid:
                self._created_connections -= 1


def from_url(url: str, **options: Any) -> redis.Redis:
    """What ``redis.Redis.from_url(url, **options)`` gives, on a :class:`LeanConnectionPool`
    (closing the client closes its pool, as with ``from_url``)."""
    client = redis.Redis(connection_pool=LeanConnectionPool.from_url(url, **options))
    client.auto_close_connection_pool = True
    return client
