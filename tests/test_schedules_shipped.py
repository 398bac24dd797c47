"""setup_schedules creates the engine's schedules: after integrations/schedules.py moved into services/, it
created only the incidents' two, so beat never started due syncs, retries or sweeps (found by deploy/smoke.sh)."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.services.schedules import all_schedules, ensure_schedules


def test_every_app_schedule_is_there_including_the_engines_dispatch():
    tasks = {task for task, _ in all_schedules().values()}
    assert {
        "integrations.dispatch_due_syncs",
        "integrations.sweep_pending_records",
        "incidents.detect",
    } <= tasks


@pytest.mark.django_db
def test_a_renamed_schedule_replaces_the_old_one_instead_of_running_twice():
    # Detection's schedule was once named for its old 15-minute rate; a database set up then still holds it.
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="Detect incidents (error rate per provider over 15 minutes)",
        task="incidents.detect",
        interval=every,
    )
    changed = ensure_schedules()
    enabled = PeriodicTask.objects.filter(task="incidents.detect", enabled=True)
    assert [t.name for t in enabled] == [
        n for n, (task, _) in all_schedules().items() if task == "incidents.detect"
    ]
    assert "Detect incidents (error rate per provider over 15 minutes)" in changed
    assert ensure_schedules() == []
