"""setup_schedules creates the engine's schedules: after integrations/schedules.py moved into services/, it
created only the incidents' two, so beat never started due syncs, retries or sweeps (found by deploy/smoke.sh)."""

from integrations.services.schedules import all_schedules


def test_every_app_schedule_is_there_including_the_engines_dispatch():
    tasks = {task for task, _ in all_schedules().values()}
    assert {
        "integrations.dispatch_due_syncs",
        "integrations.sweep_pending_records",
        "incidents.detect",
    } <= tasks
