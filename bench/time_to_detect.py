"""`python -m bench.time_to_detect`: time to detect, replayed with the clock moved (not waited for).

Each scenario runs on a fresh database (DATABASE_URL; flushed between runs): steady traffic every 10 s from
BENCH_TTD_TENANTS tenants, the fault starting at t0, and detection (`incidents.detect`) once a minute, as beat
runs it. The fault starts at each of six phases of the beat minute (0, 10, ... 50 s after a pass), so the
figures cover where in the minute an outage begins. Prints a Markdown table: seconds from the first failed
call (or from the moment every tenant needs re-authorization) to the incident's opening.
"""

import os
import statistics
import sys
from datetime import UTC, datetime, timedelta
from unittest import mock

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lineup_ops.settings")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from lineup_ops.celery import app  # noqa: E402

TENANTS = int(os.environ.get("BENCH_TTD_TENANTS", "4"))
CALLS_PER_10S = int(os.environ.get("BENCH_TTD_CALLS", "5"))  # per provider, all tenants together
HORIZON = timedelta(minutes=30)
START = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at):
        self.now = at

    def __call__(self):
        return self.now


def _fresh():
    call_command("flush", interactive=False, verbosity=0)


def _tenants(provider):
    from integrations.catalog import PROVIDERS
    from integrations.models import Integration, Tenant

    out = []
    for i in range(TENANTS):
        t = Tenant.objects.create(name=f"T{i}", slug=f"t{i}")
        out.append(
            Integration.objects.create(
                tenant=t,
                provider=provider,
                category=PROVIDERS[provider].category,
                auth_type=PROVIDERS[provider].auth_type,
            )
        )
    return out


def run(scenario: str, phase: int) -> float | None:
    """Seconds from the fault to the incident's opening (None: not within the horizon)."""
    from incidents.detection import rates
    from incidents.models import Incident
    from integrations.engine import rollups
    from integrations.models import Integration

    _fresh()
    provider = "salesforce" if scenario == "reauth" else "hubspot"
    integrations = _tenants(provider)
    clock = Clock(START - timedelta(minutes=20))
    detect_second = 30
    fault_at = None
    with mock.patch("django.utils.timezone.now", clock):
        t = 0
        while clock.now < START + HORIZON:
            clock.now = START - timedelta(minutes=20) + timedelta(seconds=t)
            # The fault begins `phase` seconds after a detection pass, 20 minutes in.
            in_fault = clock.now >= START + timedelta(seconds=detect_second + phase)
            if in_fault and fault_at is None:
                fault_at = clock.now
                if scenario == "reauth":
                    Integration.objects.filter(pk__in=[i.pk for i in integrations]).update(
                        status="needs_reauth",
                        last_error_category="auth_refresh_failed",
                        last_error_at=clock.now,
                    )
            if t % 10 == 0 and not (
                scenario == "reauth" and in_fault
            ):  # needs_reauth integrations stop calling
                errors = 0
                if in_fault and scenario == "full":
                    errors = CALLS_PER_10S
                elif in_fault and scenario == "ten_percent":
                    errors = 1 if (t // 10) % 2 == 0 else 0  # 1 in 10 of 5 calls per 10 s
                ok = CALLS_PER_10S - errors
                endpoint = "/crm/v3/objects/contacts"
                if ok:
                    rollups.count(provider=provider, endpoint=endpoint, at=clock.now, n=ok)
                if errors:
                    rollups.count(
                        provider=provider, endpoint=endpoint, category="provider_5xx", at=clock.now, n=errors
                    )
            if clock.now.second == detect_second:
                rates.detect()
                incident = Incident.objects.first()
                if incident is not None:
                    return (incident.opened_at - fault_at).total_seconds() if fault_at else 0.0
            t += 1
    return None


SCENARIOS = {
    "full": "Full outage (every call fails)",
    "ten_percent": "10% of calls fail (sustained)",
    "reauth": "Provider-wide re-auth (every tenant needs_reauth, calls stop)",
}


def main() -> None:
    app.conf.task_always_eager = True
    call_command("migrate", verbosity=0)
    rows = []
    for key, title in SCENARIOS.items():
        times = [run(key, phase) for phase in range(0, 60, 10)]
        found = [x for x in times if x is not None]
        missed = len(times) - len(found)
        rows.append(
            f"| {title} | {min(found):.0f} | {statistics.median(found):.0f} | {max(found):.0f} | "
            f"{len(found)} of {len(times)}{' (missed ' + str(missed) + ')' if missed else ''} |"
        )
        print(title, times, file=sys.stderr)
    print("| scenario | min (s) | median (s) | max (s) | opened |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
