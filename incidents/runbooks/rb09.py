"""RB-09 integration provider outage (RB-09-integration-provider-outage.md)."""

from incidents.checklist import actions, checks
from incidents.runbooks.base import Runbook, Step

D, T, C, R, V, P = "detection", "triage", "containment", "recovery", "verification", "post_incident"

RUNBOOK = Runbook(
    id="RB-09",
    document="RB-09-integration-provider-outage.md",
    section="RB-09",
    steps=(
        # Detection: trigger conditions
        Step(
            D,
            "Integration error rate spike for specific provider",
            source="Integration error rate spike for specific provider",
            check=checks.error_breakdown,
        ),
        Step(
            D,
            "Webhook delivery failures exceeding threshold",
            source="Webhook delivery failures exceeding threshold",
            check=checks.webhook_report,
        ),
        Step(
            D,
            "Enrichment data stale or unavailable",
            source="Enrichment data stale or unavailable",
            check=checks.stale_report,
        ),
        # Detection: observable signals
        Step(
            D,
            'integration_errors_total{provider="X"} increasing (GET /metrics)',
            source='integration_errors_total{provider="X"} increasing',
            check=checks.error_breakdown,
        ),
        Step(
            D,
            "webhook_delivery_failures_total spike (GET /metrics)",
            source="webhook_delivery_failures_total spike",
            check=checks.webhook_report,
        ),
        Step(
            D,
            "Timeout errors in integration logs",
            source="Timeout errors in integration logs",
            check=checks.error_breakdown,
        ),
        Step(
            D,
            "Users reporting missing CRM sync or enrichment data",
            source="Users reporting missing CRM sync or enrichment data",
            check=checks.impact_report,
        ),
        Step(D, "Dashboard: idis-integration-health (the console's home page)"),
        # Triage
        Step(
            T,
            "Identify affected provider and endpoints (error rate per endpoint over 15 minutes)",
            source="Identify affected provider and endpoints",
            block="sum by (provider, endpoint) (rate(integration_errors_total[15m]))",
            check=checks.error_breakdown,
        ),
        Step(
            T,
            "Check rate limits (429 / rate-limited sync logs and the last rate-limit headers)",
            source="Check rate limits",
            block='kubectl logs -n idis -l component=integrations-service --tail=200 | grep -i "rate limit\\|429"',
            check=checks.rate_limit_report,
        ),
        Step(
            T,
            "Check auth token expiry (check_token: each integration's token state)",
            source="Check auth token expiry",
            block="# Check OAuth token status\nkubectl exec -n idis deploy/integrations-service -- \\\n"
            "  python -c \"from idis.integrations import check_token; print(check_token('provider_name'))\"",
            check=checks.token_report,
        ),
        Step(T, "Verify provider status page", source="Verify provider status page"),
        Step(
            T,
            "Check provider's status page for known outages",
            source="Check provider's status page for known outages",
            depth=1,
            action=actions.check_status_page,
        ),
        Step(
            T,
            "Check provider's API health endpoints if available (connectivity test from the server)",
            source="Check provider's API health endpoints if available",
            depth=1,
            action=actions.test_connectivity,
        ),
        Step(
            T,
            "Assess impact scope (records with crm_sync_status FAILED in the last hour, by tenant)",
            source="Assess impact scope",
            block="SELECT tenant_id, COUNT(*) as affected_deals\nFROM deals\nWHERE crm_sync_status = 'FAILED'\n"
            "AND updated_at > NOW() - INTERVAL '1 hour'\nGROUP BY tenant_id;",
            check=checks.impact_report,
        ),
        Step(
            T,
            "Escalation: SEV-3 (fallback available): Integrations on-call",
            source="SEV-3 (fallback available): Integrations on-call",
            action=actions.escalate,
        ),
        Step(
            T,
            "Escalation: SEV-2 (no fallback, material impact): + Backend on-call",
            source="SEV-2 (no fallback, material impact): + Backend on-call",
            action=actions.escalate_backend,
        ),
        # Containment
        Step(
            C,
            "Switch to polling fallback (if applicable): polling every 5 minutes",
            source="Switch to polling fallback (if applicable)",
            block="# Disable webhook, enable polling\nkubectl set env deploy/integrations-service -n idis \\\n"
            "  CRM_MODE=polling \\\n  CRM_POLL_INTERVAL=5m",
            action=actions.switch_to_polling,
            check=checks.mode_polling,
        ),
        Step(
            C,
            "Delay enrichment steps (defer enrichment on error)",
            source="Delay enrichment steps",
            block="# Mark enrichment as deferred\nkubectl set env deploy/enrichment-service -n idis \\\n"
            "  ENRICHMENT_DEFER_ON_ERROR=true",
            action=actions.defer_enrichment,
            check=checks.enrichment_deferred,
        ),
        Step(
            C,
            'Create "stale" defects for affected data (since the incident started)',
            source='Create "stale" defects for affected data',
            block="# Create defects for claims with stale enrichment\npython scripts/create_stale_defects.py \\\n"
            '  --provider crm_provider \\\n  --since "1 hour ago"',
            action=actions.create_stale_defects,
        ),
        Step(
            C,
            "Queue webhook retries (max 10 retries)",
            source="Queue webhook retries",
            block="# Queue failed webhooks for retry\npython scripts/queue_webhook_retries.py \\\n"
            "  --provider affected_provider \\\n  --max-retries 10",
            action=actions.queue_webhook_retries,
        ),
        Step(C, "Communication", source="Communication"),
        Step(
            C,
            "Notify affected tenants of sync delays",
            source="Notify affected tenants of sync delays",
            depth=1,
            action=actions.notify_tenants,
        ),
        Step(
            C,
            "Update internal status with provider information",
            source="Update internal status with provider information",
            depth=1,
            action=actions.status_note,
        ),
        # Recovery
        Step(
            R,
            "Re-auth integration: refresh OAuth tokens (or test API keys) of the affected integrations",
            source="Re-auth integration",
            block="# Rotate and refresh OAuth tokens\npython scripts/integrations/refresh_tokens.py --provider crm_provider",
            action=actions.reconnect,
        ),
        Step(
            R,
            "Rotate tokens if compromised (full rotation, stored re-encrypted)",
            source="Rotate tokens if compromised",
            block="# Full token rotation\npython scripts/integrations/rotate_credentials.py \\\n"
            "  --provider crm_provider \\\n  --store-in-vault",
            action=actions.rotate_credentials,
        ),
        Step(
            R,
            "Reconcile missed events (since the incident started)",
            source="Reconcile missed events",
            block="# Use provider's replay API to catch up\npython scripts/integrations/reconcile.py \\\n"
            '  --provider crm_provider \\\n  --since "2 hours ago"',
            action=actions.reconcile,
        ),
        Step(
            R,
            "Clear stale defects (created within 4 hours: 'Data refreshed after provider recovery')",
            source="Clear stale defects",
            block="UPDATE defects\nSET status = 'RESOLVED',\n    resolution = 'Data refreshed after provider recovery'\n"
            "WHERE defect_type = 'STALE_ENRICHMENT'\nAND provider = 'crm_provider'\n"
            "AND created_at > NOW() - INTERVAL '4 hours';",
            action=actions.clear_stale_defects,
            check=checks.no_stale_defects,
        ),
        Step(
            R,
            "Restore normal mode (webhook mode, default poll interval, stop deferring enrichment)",
            source="Restore normal mode",
            block="kubectl set env deploy/integrations-service -n idis \\\n  CRM_MODE=webhook \\\n"
            "  CRM_POLL_INTERVAL- \\\n  ENRICHMENT_DEFER_ON_ERROR-",
            action=actions.restore_normal_mode,
            check=checks.normal_mode,
        ),
        # Verification
        Step(V, "Sync resumes", source="Sync resumes"),
        Step(
            V,
            "Integration success rate restored",
            source="Integration success rate restored",
            depth=1,
            check=checks.success_rate_restored,
        ),
        Step(
            V,
            "No new errors for 15+ minutes",
            source="No new errors for 15+ minutes",
            depth=1,
            check=checks.no_errors_15m,
        ),
        Step(V, "Audit shows recovered events", source="Audit shows recovered events"),
        Step(
            V,
            "Audit events for reconciled data present",
            source="Audit events for reconciled data present",
            depth=1,
            check=checks.reconciled_audit_present,
        ),
        Step(
            V,
            "No gaps in sync timeline",
            source="No gaps in sync timeline",
            depth=1,
            check=checks.no_sync_gaps,
        ),
        Step(
            V,
            "Data verification: verify_sync found no mismatch (sample of 20)",
            source="Data verification",
            block="# Compare local vs remote data for sample records\npython scripts/integrations/verify_sync.py \\\n"
            "  --provider crm_provider \\\n  --sample-size 20",
            action=actions.verify_sync,
            check=checks.verify_sync_clean,
        ),
        Step(V, "Webhook delivery restored", source="Webhook delivery restored"),
        Step(
            V,
            "Webhook success rate back to normal",
            source="Webhook success rate back to normal",
            depth=1,
            check=checks.webhook_success_rate,
        ),
        Step(
            V,
            "Retry queue draining",
            source="Retry queue draining",
            depth=1,
            check=checks.retry_queue_draining,
        ),
        # Console addition (issue 15): nothing the outage touched may stay behind unsynced.
        Step(
            V,
            "No record of the provider left failed or never created",
            check=checks.no_unsynced_records,
        ),
        # Postmortem: analysis focus, then resilience review
        Step(
            P,
            "Root cause of provider failure",
            source="Root cause of provider failure",
            check=checks.pm_root_cause,
        ),
        Step(
            P,
            "Was fallback mechanism effective?",
            source="Was fallback mechanism effective?",
            check=checks.pm_fallback_effective,
        ),
        Step(
            P,
            "Data reconciliation completeness",
            source="Data reconciliation completeness",
            check=checks.pm_reconciliation_completeness,
        ),
        Step(
            P,
            "Communication timeliness to affected users",
            source="Communication timeliness to affected users",
            check=checks.pm_communication_timeliness,
        ),
        Step(
            P,
            "Evaluate multi-provider strategy",
            source="Evaluate multi-provider strategy",
            check=checks.pm_multi_provider_strategy,
        ),
        Step(
            P,
            "Review fallback mechanism reliability",
            source="Review fallback mechanism reliability",
            check=checks.pm_fallback_reliability,
        ),
        Step(
            P,
            "Consider local caching improvements",
            source="Consider local caching improvements",
            check=checks.pm_local_caching,
        ),
    ),
)
