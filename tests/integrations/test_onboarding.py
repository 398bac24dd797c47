"""Onboarding: the catalog's shapes (a HubSpot integration saved as "Docs / API key" was accepted), and
connect_integration, which connects a new tenant from a script through the credential services."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from integrations.models import AuditEvent, Integration, IntegrationStatus, Tenant
from integrations.services.onboarding import validate_integration_shape

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("connect_integration", *args, stdout=out)
    return out.getvalue()


def usage_error(*args) -> str:
    with pytest.raises(CommandError) as info:
        run(*args)
    assert info.value.returncode == 2
    assert "\n" not in str(info.value)
    return str(info.value)


def test_the_catalog_refuses_a_provider_with_the_wrong_category_or_auth_type():
    with pytest.raises(ValidationError) as info:
        validate_integration_shape("hubspot", "docs", "api_key")
    assert info.value.message_dict == {
        "category": ["HubSpot is a crm provider, not docs."],
        "auth_type": ["HubSpot connects with OAuth, not an API key."],
    }
    with pytest.raises(ValidationError) as info:
        validate_integration_shape("salesforce", "crm", "oauth2", "webhook")
    assert list(info.value.message_dict) == ["mode"]
    with pytest.raises(ValidationError) as info:
        validate_integration_shape("nope", "crm", "oauth2")
    assert list(info.value.message_dict) == ["provider"]


def test_the_catalog_accepts_every_provider_as_listed():
    from integrations.catalog import PROVIDERS

    for p in PROVIDERS.values():
        validate_integration_shape(p.slug, p.category, p.auth_type, "polling")


def test_connect_an_api_key_provider_from_the_sandbox(sandbox):
    out = run(
        "--tenant", "acme", "--tenant-name", "Acme", "--provider", "greenhouse", "--from-sandbox", sandbox.url
    )
    integration = Integration.objects.get(tenant__slug="acme", provider="greenhouse")
    assert integration.status == IntegrationStatus.CONNECTED and integration.credentials.get("api_key")
    assert integration.base_url == sandbox.base_url("greenhouse")
    assert "Webhook URL to give Greenhouse: http://127.0.0.1:8000/webhooks/greenhouse/acme/" in out
    assert Tenant.objects.get(slug="acme").name == "Acme"
    assert [s["url"] for s in sandbox.webhooks("greenhouse")["subscriptions"]] == [
        "http://127.0.0.1:8000/webhooks/greenhouse/acme/"
    ]
    actions = set(AuditEvent.objects.filter(integration=integration).values_list("action", flat=True))
    assert {"integration.create", "integration.update_api_key"} <= actions


def test_connect_an_oauth_provider_with_a_refresh_token(sandbox):
    creds = sandbox.credentials("hubspot", "acme")
    run(
        "--tenant",
        "acme",
        "--provider",
        "hubspot",
        "--base-url",
        sandbox.base_url("hubspot"),
        "--refresh-token",
        creds["refresh_token"],
    )
    integration = Integration.objects.get(tenant__slug="acme", provider="hubspot")
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.credentials["access_token"] and integration.expires_at


def test_a_refused_key_leaves_nothing_behind(sandbox):
    message = usage_error(
        "--tenant",
        "acme",
        "--provider",
        "greenhouse",
        "--base-url",
        sandbox.base_url("greenhouse"),
        "--api-key",
        "not-issued-by-the-provider",
    )
    assert "refused this API key" in message
    assert not Integration.objects.exists() and not Tenant.objects.exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["--provider", "nope", "--api-key", "k", "--base-url", "http://x.example"],
            "unknown provider 'nope'",
        ),
        (
            ["--provider", "hubspot", "--api-key", "k", "--base-url", "http://x.example"],
            "connects with OAuth",
        ),
        (
            ["--provider", "greenhouse", "--refresh-token", "t", "--base-url", "http://x.example"],
            "connects with an API key",
        ),
        (["--provider", "greenhouse", "--api-key", "k"], "--base-url is required"),
        (["--provider", "greenhouse", "--api-key", "k", "--base-url", "ftp://x"], "not an http(s) URL"),
        (
            [
                "--provider",
                "salesforce",
                "--refresh-token",
                "t",
                "--base-url",
                "http://x.example",
                "--mode",
                "webhook",
            ],
            "sends no webhooks",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(args, says):
    assert says in usage_error("--tenant", "acme", *args)
    assert not Tenant.objects.exists()


def test_a_second_connect_of_the_same_provider_is_refused(sandbox):
    run("--tenant", "acme", "--provider", "greenhouse", "--from-sandbox", sandbox.url)
    assert "already has a Greenhouse integration" in usage_error(
        "--tenant", "acme", "--provider", "greenhouse", "--from-sandbox", sandbox.url
    )
