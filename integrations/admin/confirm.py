"""Admin building blocks: big-table paginator, status badges, time filters and the bulk-action confirmation page."""

import re
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import ngettext

from integrations.errors import ServiceError

# One colour per state, everywhere in the console.
BADGE_COLOURS = {
    # integrations
    "connected": "ok",
    "error": "bad",
    "needs_reauth": "warn",
    "paused": "muted",
    "disabled": "off",
    # sync logs
    "SUCCESS": "ok",
    "FAILED": "bad",
    "RETRYING": "warn",
    "RUNNING": "info",
    "PENDING": "muted",
    # webhook deliveries
    "PROCESSED": "ok",
    "RECEIVED": "info",
    "QUEUED": "warn",
    "DEAD": "off",
    # defects
    "OPEN": "bad",
    "RESOLVED": "ok",
    # records
    "SYNCED": "ok",
    "ENRICHED": "ok",
    "DEFERRED": "warn",
    "NONE": "muted",
    # incidents
    "open": "bad",
    "acknowledged": "warn",
    "contained": "warn",
    "recovering": "info",
    "verifying": "info",
    "resolved": "ok",
    "closed": "off",
    "SEV-2": "bad",
    "SEV-3": "warn",
}


def badge(value: str, label: str | None = None):
    """A coloured status badge; the same value always has the same colour."""
    tone = BADGE_COLOURS.get(value, "muted")
    return format_html('<span class="lo-badge lo-{}" data-status="{}">{}</span>', tone, value, label or value)


class EstimatedCountPaginator(Paginator):
    """Never runs a full COUNT on a big table.

    Unfiltered lists on PostgreSQL use the planner's row estimate (pg_class.reltuples). Filtered lists use
    EXPLAIN's estimate when it is large; small ones are counted for real, under a short statement timeout.
    """

    count_timeout_ms = 300
    exact_below = 10000

    @cached_property
    def count(self):
        qs = self.object_list
        connection = connections[qs.db]
        if connection.vendor != "postgresql":
            return super().count
        if not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            estimate = int(row[0]) if row else -1
            if estimate >= 0:
                # reltuples is -1 (never analysed) or stale on small tables: count those for real.
                return estimate if estimate > self.exact_below else super().count
        else:
            estimate = self._explain_estimate(qs)
            if estimate > self.exact_below:
                return estimate  # "about N": an exact count of a million rows costs more than the page itself
        try:
            with transaction.atomic(using=qs.db), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout')")
                previous = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [f"{self.count_timeout_ms}ms"]
                )
                count = qs.count()
                # SET LOCAL lasts to the end of the enclosing transaction, not the savepoint: put it back.
                # (A timeout rolls back to the savepoint, which restores it by itself.)
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
                return count
        except DatabaseError:
            return self._explain_estimate(qs)

    @staticmethod
    def _explain_estimate(qs) -> int:
        plan = qs.order_by().explain()
        match = re.search(r"rows=(\d+)", plan)
        return int(match.group(1)) if match else 0


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


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60}))


def run_confirmed_action(
    modeladmin,
    request,
    queryset,
    *,
    title: str,
    verb: str,
    service,
    form_class: type[forms.Form] | None = None,
    explanation: str = "",
    sample: int = 20,
):
    """Show what an action will change, then run `service(queryset, cleaned_data)` and report the counts.

    `service` returns an ActionResult. The confirmation page re-posts the selection (or select-across and the
    filters in the URL), never the ids of every selected row.
    """
    form = None
    if request.POST.get("confirm") == "yes":
        form = form_class(request.POST) if form_class else None
        if form is None or form.is_valid():
            try:
                result = service(queryset, form.cleaned_data if form else {})
            except ServiceError as e:
                modeladmin.message_user(request, e.message, messages.ERROR)
                return None
            except PermissionDenied as e:
                modeladmin.message_user(request, str(e), messages.ERROR)
                return None
            modeladmin.message_user(request, result.describe(verb), messages.SUCCESS)
            return None
    elif form_class:
        form = form_class()
    count = queryset.count()
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "verb": verb,
        "explanation": explanation,
        "opts": opts,
        "count": count,
        "objects": list(queryset[:sample]),
        "more": max(0, count - sample),
        "form": form,
        "action_name": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "index": request.POST.get("index", "0"),
        "back_url": request.get_full_path(),
        "verbose_name": ngettext(str(opts.verbose_name), str(opts.verbose_name_plural), count),
    }
    return TemplateResponse(request, "admin/lineup/confirm_action.html", context)
