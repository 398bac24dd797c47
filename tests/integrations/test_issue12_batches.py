"""Issue 12, part 3: batched pushes where the provider has a batch API (HubSpot batch/*, Salesforce sObject
Collections); one record failing in a batch fails alone, with its field named; one batch is one call."""

import pytest

from integrations.engine import run
from integrations.models import RecordLink, SyncLog
from tests.support.sync import connect, external_id, local_records

pytestmark = pytest.mark.django_db


def _calls(sandbox, provider, fragment):
    return [r for r in sandbox.requests(provider) if fragment in r.get("path", "")]


def test_hubspot_pushes_in_batches_of_100_and_one_bad_record_fails_alone(sandbox):
    integration = connect(sandbox, "hubspot", mode="webhook")
    good = local_records(integration, 149)
    [bad] = local_records(integration, 1, email="someone@bad.example")
    sandbox.control("hubspot", reject={"field": "email", "contains": "@bad"})

    summary = run.sync_integration(integration.pk, pull=False)

    assert (summary.pushed, summary.failed) == (149, 1)
    creates = _calls(sandbox, "hubspot", "/batch/create")
    assert len(creates) == 2  # 150 records, batches of at most 100: two calls, two units of quota
    one_by_one = [
        r
        for r in sandbox.requests("hubspot")
        if r["method"] in ("POST", "PATCH") and "/batch/" not in r["path"] and "/oauth" not in r["path"]
    ]
    assert one_by_one == []  # no call per record
    at_hubspot = {external_id(r) for r in sandbox.records("hubspot", integration.tenant.slug)}
    assert at_hubspot == {str(r.external_id) for r in good}
    row = SyncLog.objects.get(record=bad)
    assert (row.status, row.error_category, row.error_field) == ("FAILED", "validation", "email")
    assert SyncLog.objects.filter(status="SUCCESS").count() == 149  # one attempt row per record
    assert RecordLink.objects.exclude(remote_id="").count() == 149

    for record in good[:30]:
        record.payload = {**record.payload, "title": "Batched"}
        record.save()
    run.sync_integration(integration.pk, pull=False)
    assert len(_calls(sandbox, "hubspot", "/batch/update")) == 1
    titles = [r["fields"].get("jobtitle") for r in sandbox.records("hubspot", integration.tenant.slug)]
    assert titles.count("Batched") == 30


def test_salesforce_pushes_in_sobject_collections_with_per_record_errors(sandbox):
    integration = connect(sandbox, "salesforce", mode="webhook")
    good = local_records(integration, 4)
    [bad] = local_records(integration, 1, email="x@bad.example")
    sandbox.control("salesforce", reject={"field": "Email", "contains": "@bad"})

    summary = run.sync_integration(integration.pk, pull=False)

    assert (summary.pushed, summary.failed) == (4, 1)
    assert len(_calls(sandbox, "salesforce", "/composite/sobjects")) == 1
    row = SyncLog.objects.get(record=bad)
    assert (row.status, row.error_category, row.error_field) == ("FAILED", "validation", "Email")
    at_salesforce = {external_id(r) for r in sandbox.records("salesforce", integration.tenant.slug)}
    assert at_salesforce == {str(r.external_id) for r in good}

    sandbox.control("salesforce", reject=None)
    for record in good:
        record.payload = {**record.payload, "title": "VP"}
        record.save()
    run.sync_integration(integration.pk, pull=False)
    assert len(_calls(sandbox, "salesforce", "/composite/sobjects")) == 2  # one PATCH collection
    assert [r["fields"].get("Title") for r in sandbox.records("salesforce", integration.tenant.slug)] == [
        "VP"
    ] * 4


def test_providers_without_a_batch_api_keep_one_call_per_record(sandbox):
    integration = connect(sandbox, "greenhouse", mode="webhook")
    local_records(integration, 3)
    run.sync_integration(integration.pk, pull=False)
    assert len([r for r in sandbox.requests("greenhouse") if r.get("method") == "POST"]) == 3
