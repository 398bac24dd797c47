"""seed_demo gives a newcomer a console with something to look at, and a second run reuses it."""

import pytest
from django.core.management import call_command

from incidents.models import Incident
from integrations.catalog import PROVIDERS
from integrations.engine import run
from integrations.models import Defect, Integration, SyncLog, Tenant

pytestmark = pytest.mark.django_db


def test_seed_demo_then_again(sandbox, settings, tmp_path, monkeypatch):
    from incidents.management.commands import seed_demo

    monkeypatch.setattr(seed_demo, "LOGIN_FILE", tmp_path / "login.txt")
    call_command("seed_demo", sandbox_url=sandbox.url)
    assert (tmp_path / "login.txt").stat().st_mode & 0o777 == 0o600  # issue 13: not world-readable
    assert Tenant.objects.count() >= 5
    assert Integration.objects.count() >= 12
    assert set(Integration.objects.values_list("provider", flat=True)) == set(PROVIDERS)
    assert SyncLog.objects.count() >= 2000
    assert set(SyncLog.objects.exclude(error_category="").values_list("error_category", flat=True)) >= {
        "provider_5xx",
        "timeout",
        "validation",
        "rate_limited",
    }
    assert Defect.objects.filter(status="OPEN").exists()
    incident = Incident.objects.get()
    assert incident.status == "open" and incident.checklist.exists() and incident.affected_tenants.exists()
    # The list's "Detected by" names a detector and what it saw, as detection itself writes it, not an alert name.
    assert incident.detector == "console"
    assert incident.detected_by.startswith("Lineup detection (fast): ")
    # The credentials are the sandbox's own: a sync goes through.
    greenhouse = Integration.objects.filter(provider="greenhouse").first()
    assert run.sync_integration(greenhouse.pk, pull=False).pushed > 0

    counts = (
        Tenant.objects.count(),
        Integration.objects.count(),
        SyncLog.objects.count(),
        Incident.objects.count(),
    )
    password = (tmp_path / "login.txt").read_text()
    call_command("seed_demo", sandbox_url=sandbox.url)
    assert (
        Tenant.objects.count(),
        Integration.objects.count(),
        SyncLog.objects.count(),
        Incident.objects.count(),
    ) == counts
    assert (tmp_path / "login.txt").read_text() == password
