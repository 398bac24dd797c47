"""The baseline for the changelists: Django's stock ModelAdmin for SyncLog on a separate AdminSite, untuned.

Same columns and filters as the console's SyncLogAdmin (plain fields where the console shows a badge, and the stock
date filter where it has its time-window filter), and nothing else: the default paginator (an exact COUNT), the
full result count, no list_select_related (Django then follows every non-null foreign key), default ordering.
"""

from django.contrib import admin

from integrations.models import SyncLog

stock_site = admin.AdminSite(name="stock_admin")


class StockSyncLogAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "provider",
        "tenant",
        "direction",
        "operation",
        "status",
        "error_category",
        "http_status",
        "endpoint",
        "attempt",
        "error_message",
    ]
    list_filter = ["status", "error_category", "provider", "created_at", "direction"]


stock_site.register(SyncLog, StockSyncLogAdmin)
