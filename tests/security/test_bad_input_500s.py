"""Issue 13, L: the causes of 500s each answer a clear refusal (the fuzz suite in tests/fuzz/ covers the rest)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.urls import reverse

from integrations import timespec
from integrations.models import Record
from tests.support import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value",
    ["999999999999 days ago", "99999999999999 hours ago", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00"],
)
def test_l1_l3_since_overflow_and_impossible_dates_are_usage_errors(value, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    from django.utils import timezone

    with timezone.override("America/Los_Angeles"), pytest.raises(timespec.UsageError):
        timespec.since(value)


def test_l1_a_huge_duration_is_a_usage_error():
    with pytest.raises(timespec.UsageError):
        timespec.duration("999999999999 days", flag="--within")


def test_l6_a_usage_error_is_one_line():
    error = timespec.UsageError("unknown provider 'Acme\r\nBcc: x@example.com'")
    assert "\n" not in str(error) and "\r" not in str(error)


def test_l6_mail_subjects_are_one_line():
    from incidents.services.communication import one_line

    assert one_line("Acme\r\nBcc: victim@example.com") == "Acme Bcc: victim@example.com"
    mail.outbox = []


def test_l8_record_str_on_a_list_or_string_payload():
    tenant = factories.tenant()
    for payload in ([1, 2], "text"):
        record = Record.objects.create(tenant=tenant, kind="contact", payload=payload)
        assert str(record).startswith("Contact #")


def test_l9_a_non_numeric_selected_action_is_a_message_not_a_500(client, superuser):
    factories.integration(provider="hubspot")
    client.force_login(superuser)
    url = reverse("admin:integrations_integration_changelist")
    response = client.post(url, {"action": "pause_sync", ACTION_CHECKBOX_NAME: ["' OR 1=1 --"], "index": "0"})
    assert response.status_code == 302
    response = client.post(url, {"action": "pause_sync", ACTION_CHECKBOX_NAME: [str(2**70)], "index": "0"})
    assert response.status_code == 302


def test_l9_a_non_numeric_id_in_the_credential_views_is_404(client, superuser):
    client.force_login(superuser)
    url = reverse("admin:integrations_integration_api_key", args=["abc"])
    assert client.get(url).status_code == 404
