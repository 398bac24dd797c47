"""The dashboard page and the admin index: who sees it, where its links lead, empty states, query count."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine import rollups
from integrations.models import Integration
from tests.support import factories
from tests.support.dashboard_seed import HUB_ENDPOINT, outage_scene

pytestmark = pytest.mark.django_db

URLS = ["/dashboard/", "/admin/"]


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


def row(html: str, provider: str, table: int = 0) -> str:
    """The HTML of one provider's row in the n-th dashboard table."""
    rows = re.findall(rf'<tr class="[^"]*" data-provider="{provider}">.*?</tr>', html, re.S)
    return rows[table]


def params(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


@pytest.mark.parametrize("url", URLS)
def test_viewer_and_operator_see_the_dashboard(client, viewer, operator, url):
    outage_scene()
    for user in (viewer, operator):
        client.force_login(user)
        html = client.get(url).content.decode()
        assert "Integration health" in html
        assert 'class="dash-outage even"' in html or 'class="dash-outage odd"' in html
        assert "HubSpot" in html and "Greenhouse" in html


def test_the_admin_index_opens_on_the_dashboard_before_the_model_list(client, viewer):
    client.force_login(viewer)
    html = client.get("/admin/").content.decode()
    assert html.index('id="health"') < html.index('id="content-main"')


def test_anonymous_users_go_to_the_login_page(client):
    response = client.get("/dashboard/?provider=hubspot")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_without_view_permission_see_no_numbers(client):
    outage_scene()
    client.force_login(factories.user("nobody"))
    html = client.get("/dashboard/").content.decode()
    assert "You do not have permission to view integration health" in html
    assert "HubSpot" not in html.split('id="health"')[1]


def test_the_outage_row_is_red_and_says_why(client, viewer):
    outage_scene()
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    hub = row(html, "hubspot")
    assert "dash-outage" in hub and "Outage" in hub
    assert (
        "error rate 33% over 20% in the last 2 min" in hub
        and "status page: major" in hub
        and "open SEV-2 incident" in hub
    )
    assert "dash-outage" not in row(html, "greenhouse")


def test_numbers_link_to_the_changelist_filtered_to_the_rows_behind_them(client, viewer):
    scene = outage_scene()
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    hub, hub_backlog = row(html, "hubspot", 0), row(html, "hubspot", 1)
    links = hrefs(hub) + hrefs(hub_backlog)

    def find(path: str, **expected):
        for url in links:
            if url.startswith(path) and all(params(url).get(k) == v for k, v in expected.items()):
                return url
        raise AssertionError(f"no link to {path} with {expected} in {links}")

    find("/admin/integrations/integration/", provider__exact="hubspot", status__exact="error")
    find("/admin/integrations/synclog/", provider__exact="hubspot", window="15m", error_category__gt="")
    find(
        "/admin/integrations/synclog/", provider__exact="hubspot", window="15m", endpoint__exact=HUB_ENDPOINT
    )
    find(
        "/admin/integrations/synclog/",
        provider__exact="hubspot",
        window="15m",
        error_category__exact="provider_5xx",
    )
    find(f"/admin/integrations/synclog/{scene['headers_log'].pk}/change/")
    find("/admin/integrations/synclog/", provider__exact="hubspot", retry="waiting")
    find("/admin/integrations/webhookdelivery/", provider__exact="hubspot", status__exact="FAILED")
    find(
        "/admin/integrations/defect/",
        provider__exact="hubspot",
        defect_type__exact="STALE_CRM_SYNC",
        status__exact="OPEN",
    )
    find(f"/admin/incidents/incident/{scene['incident'].pk}/change/")
    gh_links = hrefs(row(html, "greenhouse", 1))
    assert any(params(u) == {"provider__exact": "greenhouse", "token": "24h"} for u in gh_links), gh_links


@pytest.mark.parametrize(
    "link, expected",
    [
        # The failed calls of the last 15 minutes: 3 x 5xx, 1 connection, 2 retrying with a category (not the
        # 2-hour-old failure, nor the successes); 5 of them on HUB_ENDPOINT.
        ("/admin/integrations/synclog/?provider__exact=hubspot&window=15m&error_category__gt=", 6),
        (
            f"/admin/integrations/synclog/?provider__exact=hubspot&window=15m&endpoint__exact={HUB_ENDPOINT}"
            "&error_category__gt=",
            5,
        ),
        ("/admin/integrations/synclog/?provider__exact=hubspot&retry=waiting", 2),
        ("/admin/integrations/webhookdelivery/?provider__exact=hubspot&status__exact=FAILED", 2),
        (
            "/admin/integrations/defect/?provider__exact=hubspot&defect_type__exact=STALE_CRM_SYNC&status__exact=OPEN",
            3,
        ),
        ("/admin/integrations/integration/?provider__exact=greenhouse&token=24h", 1),
        ("/admin/integrations/integration/?provider__exact=hubspot&status__exact=error", 1),
    ],
)
def test_the_changelists_behind_the_links_show_exactly_those_rows(client, viewer, link, expected):
    outage_scene()
    client.force_login(viewer)
    response = client.get(link)
    assert response.status_code == 200, link
    assert response.context["cl"].result_count == expected


def test_a_tenant_filtered_dashboard_keeps_the_tenant_in_every_link(client, viewer):
    scene = outage_scene()
    client.force_login(viewer)
    html = client.get("/dashboard/?tenant=acme").content.decode()
    assert "Showing tenant" in html and "Acme Recruiting" in html
    links = [u for u in hrefs(row(html, "hubspot", 0)) + hrefs(row(html, "hubspot", 1)) if "/admin/" in u]
    webhook = [u for u in links if "webhookdelivery" in u]
    assert webhook and all(params(u)["integration__id__in"] == str(scene["hub_acme"].pk) for u in webhook)
    status_links = [u for u in links if "/integration/" in u]
    assert status_links and all(params(u)["tenant__id__exact"] == str(scene["acme"].pk) for u in status_links)
    for url in links:
        if "/change/" not in url:
            assert client.get(url).status_code == 200, url  # every filter is one the changelist accepts
    assert client.get(webhook[0]).context["cl"].result_count == 2  # acme's failed HubSpot webhooks
    # The summary's failed-webhooks total is acme's too (the changelist cannot filter webhooks by tenant).
    total = next(u for u in hrefs(html) if "webhookdelivery" in u and "provider__exact" not in u)
    assert params(total)["integration__id__in"] and client.get(total).context["cl"].result_count == 2
    # The provider link keeps the tenant filter.
    assert "?provider=hubspot&tenant=acme" in hrefs(row(html, "hubspot", 0))


def test_an_unknown_tenant_says_so(client, viewer):
    outage_scene()
    client.force_login(viewer)
    html = client.get("/dashboard/?tenant=nobody").content.decode()
    assert "No tenant has the slug “nobody”" in html


@pytest.mark.parametrize("url", URLS)
def test_empty_states_on_an_empty_database(client, viewer, url):
    client.force_login(viewer)
    html = client.get(url).content.decode()
    for text in [
        "No integrations yet",
        "No calls in the last 15 minutes",
        "No open incidents",
        "Nothing waiting",
    ]:
        assert text in html, text


def test_empty_states_inside_a_quiet_provider_row(client, viewer):
    factories.integration(provider="lever")
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    lever, backlog = row(html, "lever", 0), row(html, "lever", 1)
    for text in [
        "No calls in the last 15 minutes",
        "No failed syncs in the last 15 minutes",
        "No rate-limit headers in the last 6 hours",
        "not read yet",
    ]:
        assert text in lever, text
    for text in ["No open defects", "No open incidents", "None waiting"]:
        assert text in backlog, text


def test_the_page_refreshes_itself_and_keeps_its_filter(client, viewer):
    client.force_login(viewer)
    html = client.get("/dashboard/?provider=hubspot&tenant=acme").content.decode()
    assert 'data-refresh="30"' in html and "dashboard/dashboard.js" in html
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in html  # reloads the same URL
    assert '<option value="hubspot" selected>' in html and 'value="acme"' in html


def test_no_secret_and_no_traceback_on_the_page(client, viewer):
    scene = outage_scene()
    Integration.objects.filter(pk=scene["hub_acme"].pk).update()
    hub = scene["hub_acme"]
    hub.credentials = {"access_token": "sekrit-access-token", "refresh_token": "sekrit-refresh"}
    hub.save()
    client.force_login(viewer)
    for url in ["/dashboard/", "/dashboard/?provider=%3Cscript%3E", "/dashboard/?tenant=%3Cb%3Ex"]:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200
        assert "sekrit" not in html and "Traceback" not in html
        assert "<script>" not in html and "<b>x" not in html


def test_times_are_shown_in_the_operators_time_zone(client, viewer, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "dashboard.middleware.OperatorTimezoneMiddleware"]
    outage_scene()
    client.force_login(viewer)
    client.cookies["lo_tz"] = "Asia/Kolkata"
    html = client.get("/dashboard/").content.decode()
    assert 'data-dash-tz="Asia/Kolkata"' in html
    now = timezone.localtime(timezone.now(), timezone=__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    assert now.strftime("%H:") in html and "IST" in html
    assert "ago" in html  # relative age next to the clock time
    client.cookies["lo_tz"] = "America%2FNew_York"  # percent-encoded by an older script
    assert 'data-dash-tz="America/New_York"' in client.get("/dashboard/").content.decode()
    client.cookies["lo_tz"] = "../../etc/passwd"
    assert 'data-dash-tz="UTC"' in client.get("/dashboard/").content.decode()


def _seed_provider(provider: str, tenant, *, rows: int):
    integration = factories.integration(tenant=tenant, provider=provider, status="error")
    rollups.count(provider=provider, endpoint="GET /x", n=rows)
    rollups.count(provider=provider, endpoint="GET /x", category="provider_5xx", n=rows)
    rollups.count(
        provider=provider,
        endpoint="POST /y",
        category="timeout",
        n=rows,
        at=timezone.now() - timezone.timedelta(hours=3),
    )
    for i in range(rows):
        factories.sync_log(
            count=False,
            integration=integration,
            status="RETRYING",
            error_category="timeout",
            rate_limit_headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(i)},
        )
    from incidents.models import Incident
    from integrations.models import Defect, ProviderStatusReading, WebhookDelivery

    Defect.objects.create(
        defect_type="SYNC_FAILED", provider=provider, tenant=tenant, integration=integration
    )
    WebhookDelivery.objects.create(
        integration=integration, provider=provider, event_id=f"{provider}-1", status="FAILED"
    )
    Incident.objects.create(
        runbook="RB-09", provider=provider, title="down", severity="SEV-2", detected_by="t"
    )
    ProviderStatusReading.objects.create(provider=provider, indicator="major", read_at=timezone.now())


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/dashboard/", "/admin/", "/dashboard/?tenant=t0"])
def test_the_number_of_queries_does_not_grow_with_providers_or_rows(client, viewer, url):
    client.force_login(viewer)
    tenant = factories.tenant(slug="t0")
    _seed_provider("hubspot", tenant, rows=1)
    client.get(url)  # warm the session and content types
    one = _queries(client, url)
    for provider in list(PROVIDERS)[1:]:
        _seed_provider(provider, tenant, rows=5)
    seven = _queries(client, url)
    html = client.get(url).content.decode()
    assert len(re.findall(r'data-provider="[a-z]', html)) == 2 * len(PROVIDERS)  # all shown, in both tables
    assert seven == one, (one, seven)
    # A fixed budget: session and rights (4), one query per panel, three reads of the rollups (this window, the
    # one before, the fast window), and the idle-timeout session save (a savepoint, the update, its release).
    assert seven <= 24


@pytest.mark.django_db
def test_the_site_root_leads_to_the_console(client, viewer):
    """Opening http://127.0.0.1:8000 (what make demo says it serves) gave a bare "Not Found"."""
    anonymous = client.get("/", follow=True)
    assert anonymous.status_code == 200 and anonymous.redirect_chain[-1][0].startswith("/admin/login/")
    client.force_login(viewer)
    assert client.get("/").url == "/admin/"


@pytest.mark.django_db
def test_the_retries_link_opens_the_retries_still_to_come_not_every_retried_attempt(client, viewer):
    """Walked on make demo: "0 sync retries" opened 82 Retrying rows: attempts already retried keep their
    RETRYING outcome (one attempt, one row), and the link listed them by status."""
    from integrations.models import SyncLog

    outage_scene()
    waiting = SyncLog.objects.filter(provider="hubspot", status="RETRYING", next_attempt_at__isnull=False)
    assert waiting.count() == 2
    retried = waiting.first()
    SyncLog.objects.filter(pk=retried.pk).update(
        next_attempt_at=None
    )  # retried since: a later row is its retry
    client.force_login(viewer)
    response = client.get("/admin/integrations/synclog/?provider__exact=hubspot&retry=waiting")
    assert response.context["cl"].result_count == 1
    page = client.get("/dashboard/?provider=hubspot").content.decode()
    assert "retry=waiting" in page
