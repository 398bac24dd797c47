"""RB-03 rate limit exhaustion (lineup-integration-runbooks.md, section 3)."""

from incidents.checklist import actions, checks
from incidents.runbooks.base import Runbook, Step

D, T, C, R, V, P = "detection", "triage", "containment", "recovery", "verification", "post_incident"

RUNBOOK = Runbook(
    id="RB-03",
    document="lineup-integration-runbooks.md",
    section="3. Rate Limit Exhaustion",
    steps=(
        # Symptoms
        Step(
            D,
            "429 Too Many Requests errors",
            source="429 Too Many Requests errors",
            check=checks.error_breakdown,
        ),
        Step(D, "Sync operations queuing up", source="Sync operations queuing up", check=checks.queue_report),
        Step(
            D, "Exponential backoff in logs", source="Exponential backoff in logs", check=checks.queue_report
        ),
        # Checks
        Step(
            T,
            "Check rate limit headers in recent responses (the last rate-limit headers the provider sent)",
            block="# Check rate limit headers in recent responses\n"
            'grep "X-RateLimit" /var/log/lineup/integrations.log | tail -20',
            check=checks.rate_limit_report,
        ),
        Step(
            T,
            "Check queue depth (GET /api/v1/system-metrics/queues)",
            block="# Check queue depth\ncurl https://lineup.app/api/v1/system-metrics/queues",
            check=checks.queue_report,
        ),
        # Mitigation steps
        Step(
            C,
            "Wait for rate limit reset (usually 1 hour window)",
            source="Wait for rate limit reset (usually 1 hour window)",
            check=checks.rate_limit_headroom,
        ),
        Step(C, "Identify root cause", source="Identify root cause", check=checks.error_breakdown),
        Step(
            C,
            "Bulk import causing spike?",
            source="Bulk import causing spike?",
            depth=1,
            check=checks.traffic_report,
        ),
        Step(
            C,
            "Multiple tenants hitting same provider?",
            source="Multiple tenants hitting same provider?",
            depth=1,
            check=checks.traffic_report,
        ),
        Step(
            C,
            "Retry loop amplifying requests?",
            source="Retry loop amplifying requests?",
            depth=1,
            check=checks.queue_report,
        ),
        Step(
            C,
            "Reduce request rate temporarily: pause non-critical syncs of the provider",
            source="Reduce request rate temporarily",
            block="# Pause non-critical syncs\n# Via admin console: Settings → Integrations → Pause Sync",
            action=actions.pause_non_critical,
        ),
        Step(C, "If urgent data needed", source="If urgent data needed"),
        Step(
            C,
            "Prioritize specific records (Records: Sync now with priority)",
            source="Prioritize specific records",
            depth=1,
        ),
        Step(
            C,
            "Use provider's bulk export if available",
            source="Use provider's bulk export if available",
            depth=1,
        ),
        # Console addition: "temporarily" ends here.
        Step(
            R,
            "Resume the syncs paused during this incident",
            action=actions.resume_paused,
            check=checks.nothing_left_paused,
        ),
        # Recovery confirmation
        Step(
            V,
            "Rate limit headers show available quota",
            source="Rate limit headers show available quota",
            check=checks.rate_limit_headroom,
        ),
        Step(
            V,
            "Syncs processing without 429 errors",
            source="Syncs processing without 429 errors",
            check=checks.no_429,
        ),
        Step(
            V,
            "Queue depth returning to normal",
            source="Queue depth returning to normal",
            check=checks.queue_draining,
        ),
        # Post-incident
        Step(P, "Review request patterns", source="Review request patterns", check=checks.traffic_report),
        Step(P, "Consider batching optimizations", source="Consider batching optimizations"),
        Step(
            P,
            "Check if higher rate limit tier needed",
            source="Check if higher rate limit tier needed",
            check=checks.rate_limit_report,
        ),
    ),
)
