"""RB-04 partial sync failures (lineup-integration-runbooks.md, section 4)."""

from incidents.checklist import actions, checks
from incidents.runbooks.base import Runbook, Step

D, T, C, R, V, P = "detection", "triage", "containment", "recovery", "verification", "post_incident"

RUNBOOK = Runbook(
    id="RB-04",
    document="lineup-integration-runbooks.md",
    section="4. Partial Sync Failures",
    steps=(
        # Symptoms
        Step(
            D,
            "Some records syncing, others failing",
            source="Some records syncing, others failing",
            check=checks.error_breakdown,
        ),
        Step(
            D,
            "Validation errors in sync logs",
            source="Validation errors in sync logs",
            check=checks.failure_summary,
        ),
        Step(
            D,
            "Data mismatch between systems",
            source="Data mismatch between systems",
            check=checks.verify_sync_clean,
        ),
        # Checks
        Step(
            T,
            "Check sync logs for failures (GET /api/v1/integrations/{provider}/sync-logs?status=FAILED)",
            block="# Check sync logs for failures\n"
            "curl https://lineup.app/api/v1/integrations/{provider}/sync-logs?status=FAILED",
            check=checks.failure_summary,
        ),
        Step(
            T,
            "Check failure summary (GET /api/v1/integrations/{provider}/failures)",
            block="# Check failure summary\ncurl https://lineup.app/api/v1/integrations/{provider}/failures",
            check=checks.failure_summary,
        ),
        # Mitigation steps
        Step(C, "Identify failure pattern", source="Identify failure pattern", check=checks.failure_summary),
        Step(
            C,
            "Field validation errors → Fix data format",
            source="Field validation errors → Fix data format",
            depth=1,
        ),
        Step(
            C,
            "Missing required fields → Update mapping",
            source="Missing required fields → Update mapping",
            depth=1,
        ),
        Step(
            C, "Duplicate records → Resolve conflict", source="Duplicate records → Resolve conflict", depth=1
        ),
        Step(
            C,
            "For validation errors: review failed record details (GET /api/v1/integrations/{provider}/sync-logs/{logId})",
            source="For validation errors",
            block="# Review failed record details\n"
            "curl https://lineup.app/api/v1/integrations/{provider}/sync-logs/{logId}",
            check=checks.failure_summary,
        ),
        Step(C, "For mapping issues", source="For mapping issues"),
        Step(
            C,
            "Review field mappings in integration settings",
            source="Review field mappings in integration settings",
            depth=1,
        ),
        Step(
            C,
            "Update mappings to match provider schema changes",
            source="Update mappings to match provider schema changes",
            depth=1,
        ),
        Step(
            R,
            "Retry failed syncs (POST /api/v1/integrations/{provider}/retry-failed)",
            source="Retry failed syncs",
            block="curl -X POST \\\n  https://lineup.app/api/v1/integrations/{provider}/retry-failed",
            action=actions.retry_failed,
        ),
        # Recovery confirmation
        Step(
            V,
            "Retry succeeds for previously failed records",
            source="Retry succeeds for previously failed records",
            check=checks.retry_succeeded,
        ),
        Step(
            V,
            "No new failures with same error type",
            source="No new failures with same error type",
            check=checks.no_new_failures_same_type,
        ),
        Step(
            V,
            "Data consistent between systems (verify_sync on a sample of 20)",
            source="Data consistent between systems",
            action=actions.verify_sync,
            check=checks.verify_sync_clean,
        ),
        # Console addition (issue 15): nothing the outage touched may stay behind unsynced.
        Step(
            V,
            "No record of the provider left failed or never created",
            check=checks.no_unsynced_records,
        ),
        # Post-incident
        Step(P, "Update validation logic if needed", source="Update validation logic if needed"),
        Step(P, "Document any mapping changes", source="Document any mapping changes"),
        Step(
            P,
            "Review for similar issues in other integrations",
            source="Review for similar issues in other integrations",
            check=checks.similar_failures_elsewhere,
        ),
    ),
)
