"""Issue 13, M6: background work takes its actor from the row it acts for, never from task arguments."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import services
from integrations.models import AuditEvent, BulkOperation
from integrations.tasks.recovery import reconcile_integration
from tests.support import factories
from tests.support.sync import connect

pytestmark = pytest.mark.django_db


def test_a_forged_actor_in_task_arguments_is_ignored(sandbox):
    victim = factories.user("victim", superuser=True)
    integration = connect(sandbox, "hubspot")
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    # What a periodic task made in the admin would send: the actor of somebody else.
    reconcile_integration(integration.pk, since, {"type": "user", "id": victim.pk})
    event = AuditEvent.objects.filter(action="integration.reconcile").latest("id")
    assert event.actor_user_id is None and event.actor != "victim" and event.actor.startswith("system")


def test_the_admins_reconcile_in_background_names_the_operator_from_the_row(
    sandbox, operator, django_capture_on_commit_callbacks
):
    integration = connect(sandbox, "hubspot")
    with django_capture_on_commit_callbacks(execute=True):
        services.integrations_reconcile_in_background(
            integrations=integration, since=timezone.now() - timedelta(hours=1), actor=operator
        )
    operation = BulkOperation.objects.get(action="integration.reconcile")
    assert operation.created_by == "operator"
    event = AuditEvent.objects.filter(action="integration.reconcile").latest("id")
    assert event.actor == "operator"


def test_commands_record_the_os_user_and_an_optional_actor(operator):
    from django.core.management import call_command

    from integrations.management.cli import os_user
    from integrations.timespec import UsageError

    factories.integration(provider="hubspot", mode="polling")
    call_command("set_mode", "--provider", "hubspot", "--mode", "webhook", "--actor", "operator")
    event = AuditEvent.objects.filter(action="integration.set_mode").latest("id")
    assert event.actor == f"system:cli:{os_user()} as operator"
    with pytest.raises(UsageError):
        call_command("set_mode", "--provider", "hubspot", "--mode", "polling", "--actor", "nobody")
