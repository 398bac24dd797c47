"""Issue 13, H3: credentials go only to the provider's own hosts; Test connectivity is no port scanner."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse

from integrations import services
from integrations.engine import allowlist, calls
from integrations.models import AuditEvent, Integration
from integrations.providers import ProviderError
from tests.support import factories
from tests.support.sync import connect

pytestmark = pytest.mark.django_db


class Listener:
    """An attacker's HTTP listener: records whatever reaches it."""

    def __init__(self):
        self.hits: list[tuple[str, dict, bytes]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hits.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/",
        "ftp://api.hubapi.com/",
        "https://evil.example.com/",
        "https://api.hubapi.com.evil.example/",
        "https://user:pw@api.hubapi.com/",
        "http://api.hubapi.com/",
        "file:///etc/passwd",
        "https://[::1]:8443/",
    ],
)
def test_urls_that_are_not_the_providers_are_refused(url):
    assert allowlist.url_problem("hubspot", url)


def test_the_providers_real_hosts_and_the_sandbox_outside_production_are_allowed(settings):
    assert allowlist.url_problem("hubspot", "https://api.hubapi.com") is None
    assert allowlist.url_problem("salesforce", "https://acme.my.salesforce.com/services") is None
    assert allowlist.url_problem("hubspot", "http://127.0.0.1:8765/hubspot") is None
    settings.PRODUCTION = True
    assert allowlist.url_problem("hubspot", "http://127.0.0.1:8765/hubspot")
    assert allowlist.url_problem("hubspot", "https://localhost/")
    settings.PROVIDER_ALLOWED_HOSTS = {"hubspot": ["hubspot-proxy.internal.example"]}
    assert allowlist.url_problem("hubspot", "https://hubspot-proxy.internal.example/") is None
    assert allowlist.url_problem("hubspot", "https://api.hubapi.com/")  # the listed hosts replace the default


def test_admin_cannot_point_base_url_at_a_listener_and_the_audit_keeps_both_urls(client, superuser):
    integration = factories.integration(provider="hubspot", base_url="https://api.hubapi.com")
    client.force_login(superuser)
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        {
            "base_url": "http://169.254.169.254/",
            "field_mappings-TOTAL_FORMS": "0",
            "field_mappings-INITIAL_FORMS": "0",
        }
    )
    refused = client.post(url, data)
    assert refused.status_code == 200 and "base_url" in refused.context["adminform"].form.errors
    assert Integration.objects.get(pk=integration.pk).base_url == "https://api.hubapi.com"
    data["base_url"] = "https://api.hubspot.com"
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    event = AuditEvent.objects.filter(action="integration.update").latest("id")
    assert event.details["base_url"] == {"old": "https://api.hubapi.com", "new": "https://api.hubspot.com"}


def test_reconnect_never_sends_the_refresh_token_or_client_secret_to_a_listener(sandbox, listener, superuser):
    integration = connect(sandbox, "hubspot")
    # Written behind the admin's back (an old row, a direct UPDATE): the request-time check still holds.
    Integration.objects.filter(pk=integration.pk).update(base_url=listener.url)
    result = services.integration_reconnect(integration=integration.pk, actor=superuser)
    assert result.details["outcome"] != "connected"
    assert listener.hits == []
    key = connect(sandbox, "greenhouse")
    Integration.objects.filter(pk=key.pk).update(base_url=listener.url)
    services.integration_reconnect(integration=key.pk, actor=superuser)
    assert listener.hits == []


def test_a_client_refuses_before_sending(sandbox, listener):
    integration = connect(sandbox, "greenhouse")
    integration.base_url = listener.url
    with pytest.raises(ProviderError, match="refused to send credentials"):
        calls.client_for(integration).check_credentials()
    assert listener.hits == []


def test_test_connectivity_probes_only_allowed_hosts(operator, listener):
    integration = factories.integration(provider="hubspot")
    Integration.objects.filter(pk=integration.pk).update(base_url=listener.url)
    [result] = services.integration_test_connectivity(
        integrations=Integration.objects.filter(pk=integration.pk), actor=operator
    )
    assert result["ok"] is False and "not probed" in result["steps"][0].detail
    assert listener.hits == []


def test_in_production_plain_http_goes_only_to_a_loopback_host_listed_by_name(settings):
    """deploy/smoke.sh: a sandbox beside a production install is reachable once listed; nothing else over http."""
    from integrations.engine.allowlist import url_problem

    settings.PRODUCTION = True
    settings.PROVIDER_ALLOWED_HOSTS = {"greenhouse": ["127.0.0.1"]}
    assert url_problem("greenhouse", "http://127.0.0.1:8381/greenhouse") is None
    assert url_problem("hubspot", "http://127.0.0.1:8381/hubspot") is not None  # not listed for HubSpot
    settings.PROVIDER_ALLOWED_HOSTS = {"greenhouse": ["harvest.greenhouse.io"]}
    assert "https" in url_problem("greenhouse", "http://harvest.greenhouse.io/v1")
