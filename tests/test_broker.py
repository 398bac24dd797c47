"""The Redis broker transport after a lost connection (issue 12: make faults' Redis restart).

When Redis goes away under a worker, Celery's consumer first collects its connection, which detaches the
transport from it, and then closes it. kombu 5.7's Redis channel rebuilds its connection pool on demand
from that detached transport, and raised AttributeError ("'NoneType' object has no attribute 'hostname'")
when a task in flight was acknowledged, or its unacknowledged messages requeued, after that. Celery does not
count an AttributeError as a connection error: it called it unrecoverable, and the worker stayed alive
without consuming anything again. The test uses the machine's Redis (CELERY_BROKER_URL)."""

import logging

import pytest
from kombu import Connection, Exchange, Producer, Queue

from lineup_ops.broker import Transport
from tests.support.workers import broker_url


@pytest.fixture
def url():
    return broker_url()


def _one_unacked_message(conn: Connection, name: str):
    """Publish one message to a queue of its own and take it unacknowledged, as a worker takes a task."""
    channel = conn.channel()
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name, channel=channel)
    queue.declare()
    queue.purge()
    Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    message = queue.get(no_ack=False)
    assert message is not None
    return queue, message


def test_redis_urls_use_our_transport(url):
    assert Connection(url).get_transport_cls() is Transport
    assert Connection(url.replace("redis://", "rediss://", 1)).get_transport_cls() is Transport


def test_closing_a_channel_of_a_collected_connection_with_unacked_messages(url, caplog):
    """The consumer's close after collect: kombu's own close() catches connection errors and goes on."""
    conn = Connection(url)
    queue, message = _one_unacked_message(conn, "lineup-test-broker-close")
    channel = queue.channel
    try:
        # The state Celery leaves a channel in when the broker died while the channel waited in BRPOP: its
        # close during collect failed half way, so the channel is still open, holding its unacknowledged message.
        conn.transport.client = None
        with pytest.raises(conn.connection_errors):
            channel.close()
        # The task in flight finishes after that, and Celery acknowledges it through ack_log_error, which logs a
        # connection error and goes on (the message waits in Redis's unacked index for the visibility timeout).
        with caplog.at_level(logging.CRITICAL, logger="lineup-test"):
            message.ack_log_error(
                logging.getLogger("lineup-test"), conn.connection_errors + conn.channel_errors
            )
        assert "Couldn't ack" in caplog.text
    finally:
        with Connection(url) as fresh:
            Queue(queue.name, queue.exchange, channel=fresh.channel()).delete()
