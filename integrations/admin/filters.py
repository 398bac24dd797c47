"""Changelist filters shared by several admins."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils import timezone


class TimeWindowFilter(admin.SimpleListFilter):
    """Filter on a timestamp by recent windows (an index range scan, unlike date_hierarchy)."""

    title = "time"
    parameter_name = "window"
    field_name = "created_at"
    WINDOWS = {
        "15m": ("Last 15 minutes", timedelta(minutes=15)),
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(hours=24)),
        "7d": ("Last 7 days", timedelta(days=7)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        window = self.WINDOWS.get(self.value() or "")
        if window is None:
            return queryset
        return queryset.filter(**{f"{self.field_name}__gte": timezone.now() - window[1]})


class TokenExpiryFilter(admin.SimpleListFilter):
    title = "token expiry"
    parameter_name = "token"

    def lookups(self, request, model_admin):
        return [
            ("expired", "Expired"),
            ("24h", "Expires within 24 hours"),
            ("7d", "Expires within 7 days"),
            ("none", "No expiry"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "expired":
                return queryset.filter(expires_at__lte=now)
            case "24h":
                return queryset.filter(expires_at__gt=now, expires_at__lte=now + timezone.timedelta(hours=24))
            case "7d":
                return queryset.filter(expires_at__gt=now, expires_at__lte=now + timezone.timedelta(days=7))
            case "none":
                return queryset.filter(expires_at__isnull=True)
        return queryset


class RetryFilter(admin.SimpleListFilter):
    """Attempts by their retry: still to come (RETRYING with a due time), or retried (a later attempt points at
    them). A retried attempt keeps its RETRYING or FAILED outcome: the status alone does not say which."""

    title = "retry"
    parameter_name = "retry"

    def lookups(self, request, model_admin):
        return [("waiting", "Still to come"), ("retried", "Retried (a later attempt exists)")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.awaiting_retry()
        if self.value() == "retried":
            return queryset.filter(Exists(queryset.model.objects.filter(retry_of=OuterRef("pk"))))
        return queryset
