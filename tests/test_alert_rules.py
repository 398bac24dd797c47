"""The shipped Prometheus rule file loads in Prometheus (promtool when installed, else a structural check)."""

import shutil
import subprocess

from django.conf import settings

from tests.support.services import require_or_skip

RULES = settings.BASE_DIR / "deploy" / "prometheus" / "lineup-alerts.yml"


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        require_or_skip(
            "promtool is not installed (apt-get install prometheus); the structural test still runs"
        )
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_the_alert_the_runbook_names_is_there_with_its_labels_and_runbook_link():
    import yaml

    doc = yaml.safe_load(RULES.read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    rule = rules["IDISIntegrationProviderErrors"]
    assert rule["expr"].startswith("sum by (provider, endpoint) (rate(integration_errors_total[15m]))")
    assert "/runbooks/RB-09/" in rule["annotations"]["runbook_url"]
    assert "webhook_delivery_failures_total" in rules["IDISWebhookDeliveryFailures"]["expr"]
