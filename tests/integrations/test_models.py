"""Model constraints that keep the data honest."""

import pytest
from django.db import IntegrityError, transaction

from incidents.models import Incident
from integrations.models import ApiToken, Defect
from tests.support import factories

pytestmark = pytest.mark.django_db


def test_one_integration_per_tenant_and_provider():
    t = factories.tenant()
    factories.integration(tenant=t, provider="hubspot")
    factories.integration(tenant=t, provider="lever")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.integration(tenant=t, provider="hubspot")


def test_one_active_incident_per_provider_and_runbook():
    Incident.objects.create(runbook="RB-01", provider="hubspot", title="a", severity="SEV-3", detected_by="x")
    Incident.objects.create(runbook="RB-02", provider="hubspot", title="b", severity="SEV-3", detected_by="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(
            runbook="RB-01", provider="hubspot", title="c", severity="SEV-2", detected_by="x"
        )
    Incident.objects.filter(runbook="RB-01").update(status="closed")
    Incident.objects.create(runbook="RB-01", provider="hubspot", title="d", severity="SEV-2", detected_by="x")


def test_one_open_defect_per_record_provider_and_type():
    t = factories.tenant()
    r = factories.record(tenant=t)
    Defect.objects.create(defect_type="STALE_ENRICHMENT", provider="clearbit", tenant=t, record=r)
    with pytest.raises(IntegrityError), transaction.atomic():
        Defect.objects.create(defect_type="STALE_ENRICHMENT", provider="clearbit", tenant=t, record=r)
    Defect.objects.update(status="RESOLVED")
    Defect.objects.create(defect_type="STALE_ENRICHMENT", provider="clearbit", tenant=t, record=r)


def test_tenant_token_needs_a_tenant_and_admin_token_has_none():
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(name="x", scope="tenant", prefix="a", token_hash="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(
            name="y", scope="admin", tenant=factories.tenant(), prefix="b", token_hash="b"
        )
