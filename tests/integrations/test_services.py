"""Pause, resume, disable and enable: effect, idempotence, audit with actor, and who may run them."""

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from integrations import errors, services
from integrations.access.actors import System
from integrations.models import ApiToken, AuditEvent, Integration, IntegrationStatus
from integrations.services import switches
from tests.support import factories

pytestmark = pytest.mark.django_db


def test_pause_marks_integrations_paused_and_audits_each_with_actor(operator):
    a, b = factories.integration(), factories.integration(provider="greenhouse")
    result = services.integration_pause(
        integrations=Integration.objects.filter(pk__in=[a.pk, b.pk]), actor=operator, reason="RB-03 quota"
    )
    assert (result.changed, result.unchanged) == (2, 0)
    for i in Integration.objects.filter(pk__in=[a.pk, b.pk]):
        assert (
            i.sync_paused and i.status == IntegrationStatus.PAUSED and i.sync_paused_reason == "RB-03 quota"
        )
    events = AuditEvent.objects.filter(action="integration.pause").order_by("integration_id")
    assert [e.integration_id for e in events] == [a.pk, b.pk]
    assert {e.actor for e in events} == {"operator"} and all(e.actor_user == operator for e in events)
    assert events[0].details["reason"] == "RB-03 quota"


def test_pausing_twice_is_harmless(operator):
    i = factories.integration()
    services.integration_pause(integrations=i, actor=operator, reason="first")
    again = services.integration_pause(integrations=i, actor=operator, reason="second")
    i.refresh_from_db()
    assert (again.changed, again.unchanged) == (0, 1)
    assert i.sync_paused_reason == "first" and i.status == IntegrationStatus.PAUSED


def test_pause_without_reason_changes_nothing(operator):
    i = factories.integration()
    with pytest.raises(errors.ServiceError, match=errors.REASON_REQUIRED):
        services.integration_pause(integrations=i, actor=operator, reason="  ")
    i.refresh_from_db()
    assert not i.sync_paused and not AuditEvent.objects.exists()


def test_resume_returns_to_the_status_the_last_outcome_says(operator):
    now = timezone.now()
    healthy = factories.integration(last_success_at=now)
    failing = factories.integration(
        provider="lever",
        last_success_at=now - timezone.timedelta(hours=1),
        last_error_at=now,
        last_error_category="provider_5xx",
    )
    revoked = factories.integration(
        provider="salesforce", last_error_at=now, last_error_category="auth_refresh_failed"
    )
    qs = Integration.objects.filter(pk__in=[healthy.pk, failing.pk, revoked.pk])
    services.integration_pause(integrations=qs, actor=operator, reason="maintenance")
    result = services.integration_resume(integrations=qs, actor=operator)
    assert result.changed == 3
    status = dict(qs.values_list("pk", "status"))
    assert status == {healthy.pk: "connected", failing.pk: "error", revoked.pk: "needs_reauth"}
    assert AuditEvent.objects.filter(action="integration.resume", actor="operator").count() == 3


def test_disable_wins_over_pause_and_enable_restores_pause(operator):
    i = factories.integration()
    services.integration_pause(integrations=i, actor=operator, reason="quota")
    services.integration_disable(integrations=i, actor=operator, reason="cascading failures")
    i.refresh_from_db()
    assert (i.enabled, i.status) == (False, IntegrationStatus.DISABLED)
    assert services.integration_disable(integrations=i, actor=operator).changed == 0
    services.integration_enable(integrations=i, actor=operator)
    i.refresh_from_db()
    assert (i.enabled, i.status) == (True, IntegrationStatus.PAUSED)
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "integration.pause",
        "integration.disable",
        "integration.disable",
        "integration.enable",
    ]


def test_support_viewer_is_refused_and_nothing_changes(viewer):
    i = factories.integration()
    for call in (
        lambda: services.integration_pause(integrations=i, actor=viewer, reason="x"),
        lambda: services.integration_resume(integrations=i, actor=viewer),
        lambda: services.integration_disable(integrations=i, actor=viewer),
        lambda: services.integration_enable(integrations=i, actor=viewer),
    ):
        with pytest.raises(PermissionDenied):
            call()
    i.refresh_from_db()
    assert i.enabled and not i.sync_paused and not AuditEvent.objects.exists()


def test_tenant_token_acts_only_on_its_own_tenant():
    mine, other = factories.integration(), factories.integration()
    token = ApiToken.objects.create(
        name="acme-bot", scope="tenant", tenant=mine.tenant, prefix="x", token_hash=ApiToken.hash("x")
    )
    result = services.integration_pause(
        integrations=Integration.objects.all(), actor=token, reason="tenant asked"
    )
    assert result.changed == 1
    assert Integration.objects.get(pk=mine.pk).sync_paused
    assert not Integration.objects.get(pk=other.pk).sync_paused
    assert AuditEvent.objects.get().actor == "token:acme-bot"


def test_expired_pauses_resume_by_themselves():
    i = factories.integration(
        sync_paused=True, status="paused", sync_paused_until=timezone.now() - timezone.timedelta(seconds=1)
    )
    assert services.integrations_resume_expired_pauses().changed == 1
    i.refresh_from_db()
    assert not i.sync_paused and i.status == "connected"
    assert AuditEvent.objects.get().actor == str(System("pause-expiry"))


def test_large_sets_are_changed_in_chunks(operator, monkeypatch):
    monkeypatch.setattr(switches, "CHUNK", 3)
    t = factories.tenant()
    for p in ["hubspot", "salesforce", "greenhouse", "lever", "workday", "pandadoc", "clearbit"]:
        factories.integration(tenant=t, provider=p)
    result = services.integration_pause(integrations=Integration.objects.all(), actor=operator, reason="bulk")
    assert result.changed == 7 and Integration.objects.filter(status="paused").count() == 7
