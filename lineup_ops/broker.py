"""The Redis broker transport: kombu's, with one fix that keeps a worker consuming after Redis comes back.

When Redis goes away under a worker, Celery's consumer collects its connection, which detaches the kombu
transport from it (``transport.client = None``), and then closes it. If the broker died while a channel
waited in BRPOP, the channel's close during collect fails half way and leaves it open, still holding the
unacknowledged tasks in flight. The later close, or the acknowledgement of a task that finishes afterwards,
makes kombu 5.7 rebuild the channel's connection pool from the detached transport, and that raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``. Celery does not count an AttributeError as
a connection error: it called it unrecoverable and the worker stayed alive, consuming nothing, until someone
restarted it (celery/celery#8030 and #8091; make faults' Redis restart, bench/RESULTS.md, 2026-12-02).

Here that channel raises redis' ConnectionError instead: the broker connection is gone, which is what kombu
and Celery already handle. The close goes on, the consumer reconnects, and a late acknowledgement is logged
and dropped. The task's message stays in Redis's unacked index and comes back after the visibility timeout, as
it would had the worker been killed (unless the restarted Redis kept nothing: then the engine's sweeps find
the work again, as for any lost task). lineup_ops.celery registers this class for redis:// and rediss://.
"""

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if getattr(self.connection, "client", None) is None:  # detached, or the channel itself closed
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    """Make redis:// and rediss:// URLs use this transport (kombu resolves a URL's scheme through its aliases)."""
    import kombu.transport

    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
        # A URL resolved before this (an import order we do not expect) would keep kombu's class.
        getattr(kombu.transport, "_transport_cache", {}).pop(scheme, None)
