"""The shipped Prometheus rules: they load in Prometheus, and their unit tests pass (`promtool test rules`:
a full outage fires within 2 minutes, a 2% blip fires nothing, a 103 s outage fires the fast burn only, the
alert resolves within 5 minutes of recovery). CI installs promtool (.ci/run); without it the structural test
still runs, and with REQUIRE_SERVICES=1 a missing promtool fails."""

import shutil
import subprocess

import pytest
from django.conf import settings

from tests.support.services import require_or_skip

RULES = settings.BASE_DIR / "deploy" / "prometheus" / "lineup-alerts.yml"
RULE_TESTS = settings.BASE_DIR / "deploy" / "prometheus" / "lineup-alerts.test.yml"


@pytest.fixture
def promtool():
    found = shutil.which("promtool")
    if found is None:
        require_or_skip(
            "promtool is not installed (apt-get install prometheus); the structural test still runs"
        )
    return found


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_alert_the_runbook_names_has_a_fast_and_a_slow_window_with_labels_and_runbook_link():
    import yaml

    doc = yaml.safe_load(RULES.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    windows = {r["labels"].get("window"): r for r in rules if r["alert"] == "IDISIntegrationProviderErrors"}
    assert set(windows) == {"fast", "slow"}
    assert "rate2m" in windows["fast"]["expr"] and windows["fast"]["for"] == "1m"
    assert "rate15m" in windows["slow"]["expr"] and "rate2m" in windows["slow"]["expr"]
    assert (windows["fast"]["labels"]["severity"], windows["slow"]["labels"]["severity"]) == (
        "critical",
        "warning",
    )
    recorded = {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    assert "sum by (provider, endpoint) (rate(integration_errors_total[15m]))" in " ".join(recorded.values())
    assert all("/runbooks/RB-09/" in r["annotations"]["runbook_url"] for r in rules)
    webhooks = next(r for r in rules if r["alert"] == "IDISWebhookDeliveryFailures")
    assert "webhook_delivery_failures_total" in webhooks["expr"]
