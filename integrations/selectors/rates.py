"""The one reader of error rates: attempts and errors per provider over a window of the per-minute rollups.

Detection, the dashboard and the tracker's checks all read rates here, so that they count the same attempts.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from integrations.models import OutcomeKind, OutcomeRollup


@dataclass
class ProviderRates:
    provider: str
    calls: int = 0
    errors: int = 0
    by_category: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # endpoint -> [errors, calls]
    by_endpoint: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    @property
    def rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def window_start(now: datetime, minutes: int) -> datetime:
    """The first minute of the last `minutes` minutes, the current minute included."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)


def error_rates(
    *,
    minutes: int,
    now: datetime | None = None,
    kind: str = OutcomeKind.SYNC,
    providers=None,
    end: datetime | None = None,
) -> dict[str, ProviderRates]:
    """Per provider, what the rollups counted in the last `minutes` minutes (or the window ending at `end`)."""
    now = now or timezone.now()
    qs = OutcomeRollup.objects.filter(kind=kind, minute__gte=window_start(now, minutes))
    if end is not None:
        qs = qs.filter(minute__lt=end)
    if providers is not None:
        qs = qs.filter(provider__in=list(providers))
    out: dict[str, ProviderRates] = {}
    for provider, endpoint, category, n in (
        qs.values_list("provider", "endpoint", "category").annotate(n=Sum("count")).order_by()
    ):
        r = out.setdefault(provider, ProviderRates(provider))
        r.calls += n
        r.by_endpoint[endpoint][1] += n
        if category:
            r.errors += n
            r.by_category[category] += n
            r.by_endpoint[endpoint][0] += n
    return out


def last_error_minute(
    *, provider: str, since: datetime, ignore=(), kind: str = OutcomeKind.SYNC
) -> datetime | None:
    """The last minute since `since` in which the rollups counted an error of the provider (categories in
    `ignore` aside); None when there was none. The recovery signal starts the minute after it."""
    return (
        OutcomeRollup.objects.filter(kind=kind, provider=provider, minute__gte=since)
        .exclude(category="")
        .exclude(category__in=list(ignore))
        .aggregate(m=Max("minute"))["m"]
    )


def calls_since(*, provider: str, since: datetime, kind: str = OutcomeKind.SYNC) -> int:
    """How many calls of the provider the rollups counted from the minute of `since` on."""
    return (
        OutcomeRollup.objects.filter(
            kind=kind, provider=provider, minute__gte=since.replace(second=0, microsecond=0)
        ).aggregate(n=Sum("count"))["n"]
        or 0
    )
