"""A Celery app of two tasks on Lineup Ops' broker transport and task settings, for tests that restart Redis
under a real worker (tests/test_broker_reconnect.py). No Django: the worker needs only the broker.
LINEUP_TEST_BROKER_URL names the broker; LINEUP_TEST_DONE_FILE is where a finished task writes its tag."""

import os
import time

from celery import Celery

from lineup_ops import broker

broker.register()

app = Celery(
    "lineup_broker_test", broker=os.environ.get("LINEUP_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
)
# As lineup_ops/settings.py: late acknowledgement, one task prefetched per process.
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 360},
)


def _done(tag: str) -> None:
    with open(os.environ["LINEUP_TEST_DONE_FILE"], "a") as f:
        f.write(f"{tag}\n")


@app.task(name="broker_test.busy")
def busy(seconds: float, tag: str) -> None:
    time.sleep(seconds)
    _done(tag)


@app.task(name="broker_test.probe")
def probe(tag: str) -> None:
    _done(tag)
