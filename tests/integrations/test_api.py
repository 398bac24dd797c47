"""The JSON API as the runbooks' curl commands use it, and every kind of bad input it must refuse cleanly."""

import json

import pytest

from integrations.models import AuditEvent, Integration, SyncLog
from tests.support import factories
from tests.support.sync import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    acme = factories.tenant(name="Acme", slug="acme")
    globex = factories.tenant(name="Globex", slug="globex")
    hub_acme = factories.integration(
        tenant=acme, provider="hubspot", credentials={"access_token": "SECRET-A"}
    )
    hub_globex = factories.integration(
        tenant=globex, provider="hubspot", credentials={"access_token": "SECRET-G"}
    )
    gh_acme = factories.integration(tenant=acme, provider="greenhouse", credentials={"api_key": "SECRET-K"})
    failed = factories.sync_log(
        integration=hub_acme,
        status="FAILED",
        error_category="validation",
        error_field="email",
        error_message="Property values were not valid: email",
        request_excerpt='{"email": "x"}',
        response_excerpt='{"status":"error"}',
    )
    other = factories.sync_log(integration=hub_globex, status="FAILED", error_category="provider_5xx")
    _, admin = factories.api_token(scope="admin")
    _, acme_token = factories.api_token(scope="tenant", tenant=acme)
    return {
        "acme": acme,
        "hub_acme": hub_acme,
        "hub_globex": hub_globex,
        "gh_acme": gh_acme,
        "failed": failed,
        "other": other,
        "admin": admin,
        "acme_token": acme_token,
    }


def get(client, url, token=None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(url, params, **headers)


def send(client, method, url, token, body=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body or {})
    return getattr(client, method)(
        url, data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_integration_status_lists_what_the_token_sees_without_secrets(client, world):
    everything = get(client, "/api/v1/integrations/status", world["admin"])
    assert everything.status_code == 200
    assert {i["id"] for i in everything.json()["integrations"]} == {
        world["hub_acme"].pk,
        world["hub_globex"].pk,
        world["gh_acme"].pk,
    }
    assert everything.json()["counts"]["hubspot"] == {"connected": 2}
    mine = get(client, "/api/v1/integrations/status", world["acme_token"]).json()
    assert {i["tenant"]["slug"] for i in mine["integrations"]} == {"acme"}
    assert "SECRET" not in everything.content.decode() + json.dumps(mine)


def test_provider_status_and_a_tenant_cannot_see_another(client, world):
    response = get(client, "/api/v1/integrations/hubspot/status", world["acme_token"])
    assert response.status_code == 200
    assert [i["tenant"]["slug"] for i in response.json()["integrations"]] == ["acme"]
    assert (
        get(client, "/api/v1/integrations/hubspot/status", world["acme_token"], tenant="globex").status_code
        == 404
    )
    assert get(client, "/api/v1/integrations/lever/status", world["acme_token"]).status_code == 404


def test_failed_sync_logs_filter_paginate_and_detail(client, world):
    for _ in range(3):
        factories.sync_log(integration=world["hub_acme"], status="FAILED", error_category="timeout")
    page = get(
        client, "/api/v1/integrations/hubspot/sync-logs", world["acme_token"], status="FAILED", limit=2
    ).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = client.get(page["next"], HTTP_AUTHORIZATION=f"Bearer {world['acme_token']}").json()
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(ids) == 4 and world["other"].pk not in ids and rest["next"] is None
    by_category = get(
        client, "/api/v1/integrations/hubspot/sync-logs", world["admin"], category="validation"
    ).json()
    assert [r["id"] for r in by_category["results"]] == [world["failed"].pk]
    detail = get(
        client, f"/api/v1/integrations/hubspot/sync-logs/{world['failed'].pk}", world["acme_token"]
    ).json()
    assert detail["error_field"] == "email" and detail["request"] == '{"email": "x"}'


def test_bad_input_gets_a_clear_json_error_and_changes_nothing(client, world):
    url = "/api/v1/integrations/status"
    assert get(client, url).status_code == 401
    assert get(client, url, "lo_not-a-token").json()["error"]["code"] == "invalid_token"
    assert client.get(url, HTTP_AUTHORIZATION="Basic abc").status_code == 401
    assert get(client, "/api/v1/integrations/nosuch/status", world["admin"]).status_code == 404
    assert get(client, "/api/v1/integrations/hubspot/sync-logs/999999", world["admin"]).status_code == 404
    assert (
        get(
            client, f"/api/v1/integrations/hubspot/sync-logs/{world['other'].pk}", world["acme_token"]
        ).status_code
        == 404
    )
    bad_status = get(client, "/api/v1/integrations/hubspot/sync-logs", world["admin"], status="BROKEN")
    assert bad_status.status_code == 400 and bad_status.json()["error"]["field"] == "status"
    assert (
        get(client, "/api/v1/integrations/hubspot/sync-logs", world["admin"], limit="lots").status_code == 400
    )
    assert (
        get(
            client, "/api/v1/integrations/hubspot/sync-logs", world["admin"], since="yesterday-ish"
        ).status_code
        == 400
    )
    assert send(client, "post", "/api/v1/integrations/status", world["admin"]).status_code == 405
    assert get(client, "/api/v1/nowhere", world["admin"]).json()["error"]["code"] == "not_found"

    patch = "/api/v1/admin/tenants/acme/integrations/hubspot"
    assert send(client, "patch", patch, world["acme_token"], {"enabled": False}).status_code == 403
    malformed = send(client, "patch", patch, world["admin"], raw=b"{enabled: no")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    wrong_type = send(client, "patch", patch, world["admin"], {"enabled": "false"})
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["field"] == "enabled"
    unknown = send(client, "patch", patch, world["admin"], {"enabeld": False})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "enabeld"
    assert (
        send(
            client,
            "patch",
            "/api/v1/admin/tenants/nobody/integrations/hubspot",
            world["admin"],
            {"enabled": False},
        ).status_code
        == 404
    )
    assert (
        send(
            client,
            "patch",
            "/api/v1/admin/tenants/acme/integrations/lever",
            world["admin"],
            {"enabled": False},
        ).status_code
        == 404
    )
    assert Integration.objects.filter(enabled=False).count() == 0
    assert not AuditEvent.objects.exists()
    assert SyncLog.objects.count() == 2


def test_admin_patch_disables_an_integration_as_in_rb01(client, world):
    url = f"/api/v1/admin/tenants/{world['acme'].pk}/integrations/hubspot"
    response = send(client, "patch", url, world["admin"], {"enabled": False})
    assert response.status_code == 200 and response.json()["integration"]["status"] == "disabled"
    world["hub_acme"].refresh_from_db()
    assert not world["hub_acme"].enabled and world["hub_globex"].enabled
    event = AuditEvent.objects.get(action="integration.disable")
    assert event.actor.startswith("token:") and event.integration == world["hub_acme"]
    send(
        client,
        "patch",
        url,
        world["admin"],
        {"enabled": True, "sync_paused": True, "sync_paused_reason": "RB-03"},
    )
    world["hub_acme"].refresh_from_db()
    assert world["hub_acme"].enabled and world["hub_acme"].status == "paused"


def test_refresh_forces_a_token_refresh_at_the_provider(client, sandbox):
    integration = connect(sandbox, "hubspot")
    _, token = factories.api_token(scope="tenant", tenant=integration.tenant)
    old = integration.credentials["access_token"]
    sandbox.control("hubspot", expire_tokens=True)
    response = send(client, "post", "/api/v1/integrations/hubspot/refresh", token)
    assert response.status_code == 200 and response.json()["refreshed"] == 1
    integration.refresh_from_db()
    assert integration.credentials["access_token"] != old
    assert (
        old not in response.content.decode()
        and integration.credentials["access_token"] not in response.content.decode()
    )
    assert send(client, "post", "/api/v1/integrations/greenhouse/refresh", token).status_code == 400


def test_refresh_after_needs_reauth_settles_to_connected(client, sandbox):
    """Guards the bug where a refreshed integration stayed 'error' because its last error looked newer."""
    from django.utils import timezone

    integration = connect(sandbox, "lever")
    Integration.objects.filter(pk=integration.pk).update(
        last_error_at=timezone.now(), last_error_category="auth_refresh_failed", status="needs_reauth"
    )
    _, token = factories.api_token(scope="tenant", tenant=integration.tenant)
    assert send(client, "post", "/api/v1/integrations/lever/refresh", token).json()["refreshed"] == 1
    integration.refresh_from_db()
    assert integration.status == "connected"


def test_failures_summarise_by_category_and_field_for_the_tokens_tenant(client, world):
    factories.sync_log(
        integration=world["hub_acme"], status="FAILED", error_category="validation", error_field="email"
    )
    mine = get(client, "/api/v1/integrations/hubspot/failures", world["acme_token"])
    assert mine.status_code == 200
    body = json.dumps(mine.json())
    assert (
        "validation" in body and "email" in body and "provider_5xx" not in body
    )  # globex's failure is not ours
    everyone = json.dumps(get(client, "/api/v1/integrations/hubspot/failures", world["admin"]).json())
    assert "provider_5xx" in everyone


def test_retry_failed_queues_each_failed_log_once(client, world, django_capture_on_commit_callbacks):
    world["failed"].record = factories.record(tenant=world["acme"])
    world["failed"].save()
    response = send(client, "post", "/api/v1/integrations/hubspot/retry-failed", world["acme_token"], {})
    assert response.status_code == 200 and response.json()["queued"] == 1
    world["failed"].refresh_from_db()
    # One attempt, one row: the failed attempt keeps its outcome; its retry is a new row pointing at it.
    assert world["failed"].status == "FAILED"
    retry = SyncLog.objects.get(retry_of=world["failed"])
    assert retry.status == "PENDING" and retry.next_attempt_at is not None
    again = send(client, "post", "/api/v1/integrations/hubspot/retry-failed", world["acme_token"], {})
    assert again.json()["queued"] == 0
    assert SyncLog.objects.get(pk=world["other"].pk).status == "FAILED"  # another tenant's log is untouched
    bad = send(
        client, "post", "/api/v1/integrations/hubspot/retry-failed", world["acme_token"], {"category": 5}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "category"


def test_queue_depths_count_retries_and_waiting_webhooks(client, world):
    from django.utils import timezone

    factories.sync_log(integration=world["hub_acme"], status="RETRYING", next_attempt_at=timezone.now())
    response = get(client, "/api/v1/system-metrics/queues", world["acme_token"])
    assert response.status_code == 200
    assert response.json()["sync_logs"]["retrying_due"] == 1 and response.json()["webhooks"]["failed"] == 0


def test_admin_patch_switches_to_polling_with_an_interval(client, world):
    url = "/api/v1/admin/tenants/acme/integrations/hubspot"
    response = send(client, "patch", url, world["admin"], {"mode": "polling", "poll_interval": "5m"})
    assert response.status_code == 200, response.content
    world["hub_acme"].refresh_from_db()
    assert world["hub_acme"].mode == "polling" and world["hub_acme"].poll_interval.total_seconds() == 300
    bad = send(client, "patch", url, world["admin"], {"poll_interval": "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "poll_interval"


def test_refresh_without_a_refresh_token_says_so_per_integration(client, world):
    """Guards a 500: the per-integration refusal used to look up an attribute the services package lacks."""
    _, token = factories.api_token(scope="tenant", tenant=world["acme"])
    response = send(client, "post", "/api/v1/integrations/hubspot/refresh", token)
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["outcome"] == "needs_reauth" and "re-authorized" in result["error"]
