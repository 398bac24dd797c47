"""manage.py sync and the proactive token refresh beat runs."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations import services
from integrations.models import AuditEvent, Integration
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db


def test_sync_command_runs_a_sync_now_and_waits(sandbox, capsys):
    integration = connect(sandbox, "workday")
    local_records(integration, 3)
    call_command("sync", "--provider", "workday", "--tenant", integration.tenant.slug, "--wait")
    assert "pushed=3" in capsys.readouterr().out
    assert len(sandbox.records("workday", integration.tenant.slug)) == 3


@pytest.mark.parametrize("argv", [["--provider", "nope"], ["--provider", "hubspot", "--tenant", "nobody"]])
def test_sync_command_refuses_bad_input_with_exit_2(argv):
    with pytest.raises(CommandError) as exc:
        call_command("sync", *argv)
    assert exc.value.returncode == 2


def test_tokens_close_to_expiry_are_refreshed_before_they_expire(sandbox):
    soon = connect(sandbox, "hubspot")
    later = connect(sandbox, "lever")
    Integration.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(minutes=3))
    old_token = soon.credentials["access_token"]
    result = services.tokens_refresh_expiring()
    assert result.changed == 1
    soon.refresh_from_db()
    assert soon.credentials["access_token"] != old_token and soon.expires_at > timezone.now() + timedelta(
        minutes=20
    )
    assert Integration.objects.get(pk=later.pk).last_refreshed_at == later.last_refreshed_at
    assert AuditEvent.objects.get(action="integration.refresh_token").actor == "system:token-refresh"
