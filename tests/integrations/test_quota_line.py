"""The provider's quota serves its waiters in line: "Sync now" first, then the others by how long they waited.

Before, every waiter woke when a slot freed and the quickest took it: one tenant's run could lose the race for its
whole quota wait (and its batch was parked as rate limited) while others won twice, and a "Sync now" waited
behind the backlog of every tenant. Slots are freed here by raising the limit, never by waiting for the window.
"""

import os

import pytest

from integrations.engine import quota as quota_module
from integrations.engine.quota import MemoryWindow, RedisWindow

PROVIDER = "test-line"  # its own keys: a worker or a benchmark on the same Redis never shares this line


@pytest.fixture(params=["memory", "redis"])
def window(request):
    if request.param == "memory":
        yield MemoryWindow()
        return
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("the Redis window needs CELERY_BROKER_URL=redis://...")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as e:
        pytest.skip(f"Redis at {url} does not answer: {e}")
    w = RedisWindow(url)
    w.reset(PROVIDER)
    yield w
    w.reset(PROVIDER)


def admitted(window, tickets, priority=()) -> list[str]:
    """Each waiter looks once, in the given order; the ones the quota let through."""
    return [t for t in tickets if window.try_hit(PROVIDER, t, priority=t in priority) == 0]


def full_quota(window, settings, limit: int) -> None:
    settings.PROVIDER_QUOTAS = {PROVIDER: (limit, 600)}
    assert len(admitted(window, [f"first-{i}" for i in range(limit)])) == limit


def test_a_freed_slot_goes_to_the_waiter_who_waited_longest(window, settings):
    full_quota(window, settings, 2)
    assert admitted(window, ["a", "b", "c"]) == []  # they wait, in this order
    settings.PROVIDER_QUOTAS = {PROVIDER: (3, 600)}  # one slot frees
    # "c" looks first, but "a" has waited longest: the slot is "a"'s, however the wake-ups fall
    assert admitted(window, ["c", "b"]) == []
    assert admitted(window, ["a"]) == ["a"]
    settings.PROVIDER_QUOTAS = {PROVIDER: (4, 600)}
    assert admitted(window, ["c", "b"]) == ["b"]
    settings.PROVIDER_QUOTAS = {PROVIDER: (5, 600)}
    assert admitted(window, ["c"]) == ["c"]


def test_a_priority_waiter_goes_ahead_of_the_backlog(window, settings):
    full_quota(window, settings, 2)
    assert admitted(window, ["backlog-1", "backlog-2"]) == []
    assert admitted(window, ["sync-now"], priority={"sync-now"}) == []
    settings.PROVIDER_QUOTAS = {PROVIDER: (3, 600)}
    assert admitted(window, ["backlog-1", "backlog-2"]) == []
    assert admitted(window, ["sync-now"], priority={"sync-now"}) == ["sync-now"]
    settings.PROVIDER_QUOTAS = {PROVIDER: (4, 600)}
    assert admitted(window, ["backlog-2", "backlog-1"]) == ["backlog-1"]


def test_a_waiter_who_left_or_went_silent_loses_its_place(window, settings, monkeypatch):
    full_quota(window, settings, 1)
    assert admitted(window, ["gave-up", "killed", "patient"]) == []
    window.leave(PROVIDER, "gave-up")
    monkeypatch.setattr(quota_module, "STALE_SECONDS", 0.2)
    import time

    time.sleep(0.3)  # "killed" has not looked since; "patient" looks now
    settings.PROVIDER_QUOTAS = {PROVIDER: (2, 600)}
    assert admitted(window, ["patient"]) == ["patient"]


def test_acquire_without_a_ticket_leaves_the_line_when_it_times_out(window, settings):
    full_quota(window, settings, 1)
    quota = quota_module.ProviderQuota("memory://")
    quota._window = window
    assert quota.acquire(PROVIDER, timeout=0.05) is False
    assert admitted(window, ["later"]) == []
    settings.PROVIDER_QUOTAS = {PROVIDER: (2, 600)}
    assert admitted(window, ["later"]) == ["later"]  # the timed-out caller holds no place ahead of it


def test_the_providers_last_slot_being_ours_blocks_no_one(window, settings):
    """HubSpot says "0 remaining" on the last call of every window a drain uses to the full. When that last slot
    was ours, our own window already waits for the next one; blocking every worker for the provider's whole
    interval as well left up to a window of the quota unused, again and again (a drain at 0.7 of the quota)."""
    settings.PROVIDER_QUOTAS = {PROVIDER: (2, 600)}
    quota = quota_module.ProviderQuota("memory://")
    quota._window = window
    assert quota.acquire(PROVIDER, timeout=0)
    quota.observe(PROVIDER, remaining=1, reset_seconds=600)
    assert quota.acquire(PROVIDER, timeout=0)
    quota.observe(PROVIDER, remaining=0, reset_seconds=600)
    assert quota.blocked_for(PROVIDER) == 0


def test_the_provider_out_of_quota_before_us_blocks_everyone(window, settings):
    """Another client of the same app used some of it: the provider has none left while our window has."""
    settings.PROVIDER_QUOTAS = {PROVIDER: (5, 600)}
    quota = quota_module.ProviderQuota("memory://")
    quota._window = window
    assert quota.acquire(PROVIDER, timeout=0)
    quota.observe(PROVIDER, remaining=0, reset_seconds=600)
    assert quota.blocked_for(PROVIDER) > 0
    assert quota.acquire(PROVIDER, timeout=0) is False
