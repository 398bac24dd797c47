"""A clock tests move instead of waiting: `django.utils.timezone.now` (which every model default, auto_now and
service reads) returns the clock's time until the test ends.

    def test_x(clock):
        clock.set(datetime(2026, 11, 24, 10, 0, 20, tzinfo=UTC))
        clock.advance(seconds=10)
"""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    c = Clock(datetime.now(UTC).replace(microsecond=0))
    with mock.patch("django.utils.timezone.now", c):
        yield c
