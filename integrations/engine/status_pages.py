"""RB-01 "check provider status page": beat reads each provider's public status page through its adapter."""

from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine.calls import client_for
from integrations.models import Integration, ProviderStatusReading
from integrations.providers import ProviderError


def read_status_page(provider: str) -> ProviderStatusReading | None:
    """Read and store one provider's status page; None when no integration tells us where the provider is."""
    integration = Integration.objects.filter(provider=provider).order_by("-enabled", "pk").first()
    if integration is None:
        return None
    now = timezone.now()
    try:
        status = client_for(integration).status()
        values = {
            "indicator": status.indicator,
            "description": status.description[:300],
            "read_at": now,
            "error": "",
        }
    except ProviderError as e:
        values = {"indicator": "", "description": "", "read_at": now, "error": str(e)[:500]}
    reading, _ = ProviderStatusReading.objects.update_or_create(provider=provider, defaults=values)
    return reading


def read_all_status_pages() -> dict[str, str]:
    out = {}
    for provider in PROVIDERS:
        reading = read_status_page(provider)
        if reading is not None:
            out[provider] = reading.indicator or f"unreadable: {reading.error[:60]}"
    return out
