"""One running sync per integration: a lease taken with a conditional UPDATE, renewed per call, released at the end."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import Integration


def lease_length() -> timedelta:
    # Renewed on every record pushed, so a killed worker's lease lapses soon.
    return timedelta(seconds=settings.SYNC_LEASE_SECONDS)


def acquire_lease(integration_id: int, owner: str) -> bool:
    now = timezone.now()
    return bool(
        Integration.objects.filter(pk=integration_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_until=now + lease_length(), sync_lease_owner=owner)
    )


def renew_lease(integration_id: int, owner: str) -> None:
    Integration.objects.filter(pk=integration_id, sync_lease_owner=owner).update(
        sync_lease_until=timezone.now() + lease_length()
    )


def release_lease(integration_id: int, owner: str) -> None:
    Integration.objects.filter(pk=integration_id, sync_lease_owner=owner).update(
        sync_lease_until=None, sync_lease_owner=""
    )
