"""An integrations admin re-authorizes a HubSpot integration whose refresh token was revoked, in a real Chromium:
Reconnect -> Re-authorize -> the provider's consent page -> Grant access -> back in the console, Connected."""

import pytest

from integrations import services
from integrations.access.actors import System
from integrations.models import AuditEvent, Integration
from tests.support import factories
from tests.support.sync import connect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.integrations.credential_test_urls"),
]


def test_admin_reauthorizes_a_revoked_integration_in_the_browser(live_server, page, sandbox, artifacts_dir):
    t = factories.tenant(name="Acme Recruiting", slug="acme")
    hub = connect(sandbox, "hubspot", tenant=t)
    sandbox.control("hubspot", expire_tokens=True, revoke_refresh_tokens=True)
    services.integration_reconnect(integration=hub, actor=System("token-refresh"))
    assert Integration.objects.get(pk=hub.pk).status == "needs_reauth"
    factories.user("alice", group=factories.ADMIN)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/integrations/integration/{hub.pk}/change/")
    assert page.inner_text(".field-status_badge .lo-badge") == "Needs re-auth"

    page.click("#lo-reconnect")
    page.wait_for_selector("text=re-authorize the integration")
    page.click("#lo-reauthorize-link")

    page.wait_for_selector("text=Grant access")
    assert page.url.startswith(sandbox.base_url("hubspot") + "/oauth/authorize")
    assert page.input_value("#account") == "acme"
    page.click("button.grant")

    page.wait_for_selector("text=Re-authorized Acme Recruiting / HubSpot")
    assert page.url == f"{live_server.url}/admin/integrations/integration/{hub.pk}/change/"
    assert page.inner_text(".field-status_badge .lo-badge") == "Connected"
    page.screenshot(path=str(artifacts_dir / "reauthorize.png"), full_page=True)

    hub.refresh_from_db()
    assert hub.status == "connected" and hub.credentials["refresh_token"] != ""
    assert AuditEvent.objects.filter(
        action="integration.authorize_complete", actor="alice", details__outcome="authorized"
    ).exists()
    assert hub.credentials["access_token"] not in page.content()
