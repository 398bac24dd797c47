"""The health dashboard in a real Chromium at laptop size: the provider in outage is red and its numbers lead to
the sync logs behind them; the empty dashboard says so; dark mode and the keyboard work."""

import re

import pytest
from django.conf import settings

from integrations.models import SyncLog
from tests.support import factories
from tests.support.dashboard_seed import outage_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TZ_MIDDLEWARE = "dashboard.middleware.OperatorTimezoneMiddleware"


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "timezone_id": "Europe/Paris"}


def login(page, live_server, username="viewer"):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#health")
    page.wait_for_load_state("load")


def red_channel_dominates(css_colour: str) -> bool:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return r > g + 20 and r > b + 20


def test_the_provider_in_outage_shows_in_red_and_its_link_opens_the_filtered_sync_logs(
    live_server, page, artifacts_dir
):
    scene = outage_scene()
    factories.user("viewer", group=factories.VIEWER)
    login(page, live_server)  # the admin index, the first page after login, is the dashboard

    hub_row = page.locator("table.dash-table tr[data-provider=hubspot]").first
    assert "dash-outage" in hub_row.get_attribute("class")
    assert "Outage" in hub_row.inner_text()
    # Red, not merely a class name: the row's left edge and its badge are drawn red.
    edge = hub_row.locator("th").first.evaluate("el => getComputedStyle(el).boxShadow")
    assert red_channel_dominates(edge), edge
    badge = hub_row.locator(".dash-outage-badge").evaluate("el => getComputedStyle(el).color")
    assert red_channel_dominates(badge), badge
    gh_row = page.locator("table.dash-table tr[data-provider=greenhouse]").first
    assert "dash-outage" not in (gh_row.get_attribute("class") or "")
    assert "40%" in hub_row.locator("td.dash-rate").inner_text()
    page.screenshot(path=str(artifacts_dir / "dashboard-outage.png"), full_page=True)

    # The number of failed calls opens the sync logs of HubSpot's failures in the last 15 minutes.
    hub_row.get_by_role("link", name=re.compile("Failed calls, last 15 minutes")).click()
    page.wait_for_url(re.compile(r"/admin/integrations/synclog/\?"))
    assert "provider__exact=hubspot" in page.url and "window=15m" in page.url
    rows = page.locator("#result_list tbody tr")
    expected = (
        SyncLog.objects.filter(provider="hubspot").exclude(error_category="").count() - 1
    )  # minus the old
    assert rows.count() == expected == 6
    for text in rows.all_inner_texts():
        assert "hubspot" in text.lower()
    page.screenshot(path=str(artifacts_dir / "dashboard-outage-sync-logs.png"), full_page=True)

    # The incident's link opens its page.
    page.go_back()
    page.locator("table.dash-incidents").get_by_role(
        "link", name=re.compile(f"INC-{scene['incident'].pk}")
    ).click()
    page.wait_for_url(re.compile(rf"/admin/incidents/incident/{scene['incident'].pk}/"))


def test_the_empty_dashboard_shows_its_empty_states(live_server, page, artifacts_dir):
    factories.user("viewer", group=factories.VIEWER)
    login(page, live_server)
    panel = page.locator("#health").inner_text()
    for text in [
        "No integrations yet",
        "No calls in the last 15 minutes",
        "No open incidents",
        "Nothing waiting",
    ]:
        assert text in panel, text
    assert page.locator("tr.dash-outage").count() == 0
    page.screenshot(path=str(artifacts_dir / "dashboard-empty.png"), full_page=True)


def test_filter_survives_the_refresh_and_the_keyboard_reaches_the_numbers(live_server, page, artifacts_dir):
    outage_scene()
    factories.user("viewer", group=factories.VIEWER)
    login(page, live_server)
    page.select_option("#dash-provider", "hubspot")
    page.click(".dash-filter button[type=submit]")
    page.wait_for_url(re.compile(r"provider=hubspot"))
    assert page.locator("table.dash-table tbody tr[data-provider]").count() == 2  # one row in each table
    page.reload()  # what the 30-second refresh does
    assert "provider=hubspot" in page.url
    assert page.locator("#dash-provider").input_value() == "hubspot"

    # Pause/resume is a real button; focus is visible on links.
    toggle = page.locator("#dash-refresh-toggle")
    assert toggle.is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    page.keyboard.press("Tab")  # from the toggle to the first link of the first table
    focused = page.evaluate(
        "[document.activeElement.tagName, document.activeElement.textContent,"
        " getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused[:2] == ["A", "HubSpot"] and focused[2] != "none", focused
    page.keyboard.press("Enter")  # a real link: the keyboard follows it
    page.wait_for_url(re.compile(r"provider=hubspot"))


def test_dark_mode_screenshot(live_server, page, artifacts_dir):
    outage_scene()
    factories.user("viewer", group=factories.VIEWER)
    page.emulate_media(color_scheme="dark")
    login(page, live_server)
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(x) for x in re.findall(r"\d+", bg)[:3]) < 200, bg  # the admin's dark theme is on
    hub_row = page.locator("table.dash-table tr[data-provider=hubspot]").first
    assert "dash-outage" in hub_row.get_attribute("class")
    page.screenshot(path=str(artifacts_dir / "dashboard-dark.png"), full_page=True)


@pytest.mark.skipif(TZ_MIDDLEWARE not in settings.MIDDLEWARE, reason=f"{TZ_MIDDLEWARE} is not in MIDDLEWARE")
def test_times_follow_the_browsers_time_zone(live_server, page):
    outage_scene()
    factories.user("viewer", group=factories.VIEWER)
    login(page, live_server)
    page.wait_for_function("document.querySelector('.dash-tz').textContent === 'Europe/Paris'")
