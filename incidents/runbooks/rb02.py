"""RB-02 OAuth token expiry (lineup-integration-runbooks.md, section 2)."""

from incidents.checklist import actions, checks
from incidents.runbooks.base import Runbook, Step

D, T, C, R, V, P = "detection", "triage", "containment", "recovery", "verification", "post_incident"

RUNBOOK = Runbook(
    id="RB-02",
    document="lineup-integration-runbooks.md",
    section="2. OAuth Token Expiry",
    steps=(
        # Symptoms
        Step(
            D,
            "401 Unauthorized errors in sync logs",
            source="401 Unauthorized errors in sync logs",
            check=checks.error_breakdown,
        ),
        Step(
            D,
            '"Token expired" or "Invalid grant" errors',
            source='"Token expired" or "Invalid grant" errors',
            check=checks.error_breakdown,
        ),
        Step(
            D,
            'Integration marked as "needs_reauth"',
            source='Integration marked as "needs_reauth"',
            check=checks.status_report,
        ),
        # Checks
        Step(
            T,
            "Check integration status (GET /api/v1/integrations/{provider}/status)",
            block='# Check integration status\ncurl -H "Authorization: Bearer $TOKEN" \\\n'
            "  https://lineup.app/api/v1/integrations/{provider}/status",
            check=checks.status_report,
        ),
        Step(
            T,
            "Check token expiry (expires_at, last_refreshed_at of the provider's integrations)",
            block="# Check token expiry in database\nSELECT expires_at, last_refreshed_at \nFROM integrations \n"
            "WHERE tenant_id = '...' AND provider = '...';",
            check=checks.token_report,
        ),
        # Mitigation steps: each one restores access, so they are the recovery phase here.
        Step(
            R,
            "For providers with refresh tokens (auto-refresh should occur): force token refresh "
            "(POST /api/v1/integrations/{provider}/refresh) and a test call",
            source="For providers with refresh tokens (auto-refresh should occur)",
            block="# Force token refresh\ncurl -X POST \\\n  https://lineup.app/api/v1/integrations/{provider}/refresh",
            action=actions.reconnect,
            auth="oauth2",
        ),
        Step(
            R,
            "If refresh fails (refresh token also expired)",
            source="If refresh fails (refresh token also expired)",
            check=checks.no_needs_reauth,
            auth="oauth2",
        ),
        Step(
            R,
            "User must re-authorize the integration",
            source="User must re-authorize the integration",
            depth=1,
            check=checks.no_needs_reauth,
            auth="oauth2",
        ),
        Step(
            R,
            "Navigate to Settings → Integrations → Reconnect (the integration's Re-authorize button)",
            source="Navigate to Settings → Integrations → Reconnect",
            depth=1,
            action=actions.reconnect,
            auth="oauth2",
        ),
        Step(
            R,
            "For API key providers (Greenhouse, Workday)",
            source="For API key providers (Greenhouse, Workday)",
            auth="api_key",
        ),
        Step(
            R,
            "Verify API key is still valid in provider dashboard (test call with the stored key)",
            source="Verify API key is still valid in provider dashboard",
            depth=1,
            action=actions.reconnect,
            auth="api_key",
        ),
        Step(
            R,
            "Update credentials if rotated (the integration's Update API key form)",
            source="Update credentials if rotated",
            depth=1,
            auth="api_key",
        ),
        # Recovery confirmation
        Step(
            V,
            "Token successfully refreshed",
            source="Token successfully refreshed",
            check=checks.token_refreshed,
        ),
        Step(V, "Test API call succeeds", source="Test API call succeeds", check=checks.test_call_ok),
        Step(V, "Sync resumes normally", source="Sync resumes normally", check=checks.sync_success),
        # Post-incident
        Step(
            P,
            "Check if token rotation is needed",
            source="Check if token rotation is needed",
            action=actions.rotate_credentials,
        ),
        Step(
            P,
            "Review refresh token TTL settings",
            source="Review refresh token TTL settings",
            check=checks.token_report,
        ),
        Step(
            P,
            "Consider implementing proactive refresh (beat refreshes tokens expiring within 10 minutes)",
            source="Consider implementing proactive refresh",
        ),
    ),
)
