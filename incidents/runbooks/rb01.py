"""RB-01 CRM/ATS provider downtime (lineup-integration-runbooks.md, section 1)."""

from incidents.checklist import actions, checks
from incidents.runbooks.base import Runbook, Step

D, T, C, R, V, P = "detection", "triage", "containment", "recovery", "verification", "post_incident"

RUNBOOK = Runbook(
    id="RB-01",
    document="lineup-integration-runbooks.md",
    section="1. CRM/ATS Provider Downtime",
    steps=(
        # Symptoms
        Step(
            D,
            'Integration status shows "error"',
            source='Integration status shows "error"',
            check=checks.status_report,
        ),
        Step(
            D,
            "Sync logs showing connection failures",
            source="Sync logs showing connection failures",
            check=checks.error_breakdown,
        ),
        Step(
            D,
            "Provider API returning 5xx errors",
            source="Provider API returning 5xx errors",
            check=checks.error_breakdown,
        ),
        # Checks
        Step(
            T,
            "Check integration status (GET /api/v1/integrations/status): the provider's integrations and their statuses",
            block='# Check integration status\ncurl -H "Authorization: Bearer $TOKEN" \\\n'
            "  https://lineup.app/api/v1/integrations/status",
            check=checks.status_report,
        ),
        Step(
            T,
            "Check provider status page (the provider's Statuspage status.json, from the server)",
            block="# Check provider status page\n# HubSpot: status.hubspot.com\n# Salesforce: status.salesforce.com\n"
            "# Greenhouse: status.greenhouse.io\n# Lever: status.lever.co",
            action=actions.check_status_page,
        ),
        # Mitigation steps
        Step(
            C,
            "Verify provider status - Check their status page",
            source="Verify provider status - Check their status page",
            action=actions.check_status_page,
        ),
        Step(
            C,
            "If provider is down: No action needed, retries will resume when up",
            source="If provider is down: No action needed, retries will resume when up",
            check=checks.queue_report,
        ),
        Step(C, "If provider is up but we can't connect", source="If provider is up but we can't connect"),
        Step(
            C,
            "Test connectivity from server (DNS, TCP, TLS and an HTTP request to the provider's base URL)",
            block="# Test connectivity from server\ncurl -v https://api.hubspot.com/health",
            action=actions.test_connectivity,
            depth=1,
        ),
        Step(
            C,
            "Check for network issues (connectivity test from the server)",
            block="# Check for network issues\ndocker exec backend ping api.hubspot.com",
            action=actions.test_connectivity,
            depth=1,
        ),
        Step(
            C,
            "Disable integration temporarily (if causing cascading failures): "
            'PATCH /api/v1/admin/tenants/{tenantId}/integrations/{provider} {"enabled": false}',
            source="Disable integration temporarily (if causing cascading failures)",
            block='curl -X PATCH \\\n  -H "Authorization: Bearer $ADMIN_TOKEN" \\\n'
            "  https://lineup.app/api/v1/admin/tenants/{tenantId}/integrations/{provider} \\\n"
            "  -d '{\"enabled\": false}'",
            action=actions.disable_integration,
        ),
        # Console addition: what step 4 disabled comes back before recovery can be confirmed.
        Step(
            R,
            "Enable the integrations disabled during this incident",
            action=actions.enable_integration,
            check=checks.nothing_left_disabled,
        ),
        # Recovery confirmation
        Step(
            V,
            'Integration status shows "connected"',
            source='Integration status shows "connected"',
            check=checks.status_connected,
        ),
        Step(
            V,
            "Sync logs show successful operations",
            source="Sync logs show successful operations",
            check=checks.sync_success,
        ),
        Step(
            V,
            "No error alerts in last 15 minutes",
            source="No error alerts in last 15 minutes",
            check=checks.no_errors_15m,
        ),
        # Console addition (issue 15): nothing the outage touched may stay behind unsynced.
        Step(
            V,
            "No record of the provider left failed or never created",
            check=checks.no_unsynced_records,
        ),
        # Post-incident
        Step(
            P,
            "Check if any data needs manual sync",
            source="Check if any data needs manual sync",
            check=checks.no_failed_records,
        ),
        Step(
            P,
            "Review failed sync logs for retryable items",
            source="Review failed sync logs for retryable items",
            action=actions.retry_failed,
        ),
        Step(
            P,
            "Update status in incident tracker",
            source="Update status in incident tracker",
            check=checks.incident_resolved,
        ),
    ),
)
