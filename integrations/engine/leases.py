"""One running sync per integration: a lease taken with a conditional UPDATE, renewed per call, released at the end."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from integrations.models import Integration

# A run renews its lease at least this often while it waits for the provider's quota.
RENEW_EVERY_SECONDS = 5.0


def lease_length() -> timedelta:
    # Renewed on every call and every few seconds of a quota wait, so it can be short: a killed worker's
    # integration is free again, and due (dispatch.due_integration_ids), SYNC_LEASE_SECONDS after its last renewal.
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


def lapsed_leases(now) -> QuerySet:
    """Integrations whose sync run stopped without releasing its lease (its worker was killed): due again."""
    return Integration.objects.filter(sync_lease_until__lt=now).exclude(sync_lease_owner="")
