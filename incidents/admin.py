"""The incident tracker's screens: the changelist with the four durations and their medians, the tracker page
(replacing the change form), opening an incident by hand, and the postmortem form. Views live in
views/tracker.py."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html

from incidents.models import Incident, Postmortem, TenantContact
from incidents.selectors import durations, format_duration, median_durations
from incidents.services.timeline import can_operate
from incidents.views import tracker as views
from integrations.admin.display import badge, short


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    # Columns that fit 1280 px: the incident link names runbook and provider; the four times share a column.
    list_display = [
        "tracker_link",
        "title_short",
        "severity_badge",
        "status_badge",
        "detected_short",
        "opened_at",
        "commander",
        "times",
    ]
    list_display_links = None
    list_filter = ["status", "severity", "provider", "runbook"]
    link_lookups = ("affected_tenants__id",)  # the dashboard's links (issue 13, M1)
    list_select_related = ["commander"]
    search_fields = ["=id", "=provider", "title"]
    search_help_text = "Exact incident id or provider slug, or words of the title."
    show_facets = admin.ShowFacets.NEVER
    ordering = ["-opened_at", "-id"]
    change_list_template = "admin/incidents/incident/change_list.html"

    # Every change goes through services: the admin's own change and add forms are replaced by the tracker.
    def has_add_permission(self, request):
        return can_operate(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        def wrap(view, name):
            def inner(request, *args, **kwargs):
                return view(self, request, *args, **kwargs)

            return path(name[0], self.admin_site.admin_view(inner), name=f"incidents_incident_{name[1]}")

        return [
            wrap(views.tracker, ("<int:pk>/tracker/", "tracker")),
            wrap(views.transition, ("<int:pk>/tracker/status/", "transition")),
            wrap(views.acknowledge, ("<int:pk>/tracker/acknowledge/", "acknowledge")),
            wrap(views.run_item, ("<int:pk>/tracker/item/<int:item_pk>/run/", "run_item")),
            wrap(views.mark_done, ("<int:pk>/tracker/item/<int:item_pk>/done/", "mark_done")),
            wrap(views.skip, ("<int:pk>/tracker/item/<int:item_pk>/skip/", "skip")),
            wrap(views.note, ("<int:pk>/tracker/note/", "note")),
            wrap(views.notify, ("<int:pk>/tracker/notify/", "notify")),
            wrap(views.postmortem, ("<int:pk>/postmortem/", "postmortem")),
            wrap(views.covering, ("covering/", "covering")),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return views.open_incident(self, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        try:
            return redirect("admin:incidents_incident_tracker", int(object_id))
        except ValueError:
            return redirect("admin:incidents_incident_changelist")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if cl is not None:
            medians = median_durations(cl.queryset)
            response.context_data["incident_medians"] = [
                ("Time to detect", format_duration(medians["detect"])),
                ("Time to acknowledge", format_duration(medians["acknowledge"])),
                ("Time to contain", format_duration(medians["contain"])),
                ("Time to recover", format_duration(medians["recover"])),
            ]
        return response

    @admin.display(description="Incident", ordering="id")
    def tracker_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', views.tracker_url(obj), f"INC-{obj.pk} {obj.runbook} {obj.provider}"
        )

    @admin.display(description="Severity", ordering="severity")
    def severity_badge(self, obj):
        return badge(obj.severity)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Title", ordering="title")
    def title_short(self, obj):
        return short(obj.title, 50)

    @admin.display(description="Detected by", ordering="detected_by")
    def detected_short(self, obj):
        return short(obj.detected_by, 24)

    @admin.display(description="Detect · ack · contain · recover")
    def times(self, obj):
        d = durations(obj)
        return " · ".join(format_duration(d[k]) for k in ("detect", "acknowledge", "contain", "recover"))

    @admin.display(description="TTD")
    def time_to_detect(self, obj):
        return format_duration(durations(obj)["detect"])

    @admin.display(description="TTA")
    def time_to_acknowledge(self, obj):
        return format_duration(durations(obj)["acknowledge"])

    @admin.display(description="TTC")
    def time_to_contain(self, obj):
        return format_duration(durations(obj)["contain"])

    @admin.display(description="TTR")
    def time_to_recover(self, obj):
        return format_duration(durations(obj)["recover"])


@admin.register(Postmortem)
class PostmortemAdmin(admin.ModelAdmin):
    list_display = ["incident", "author", "updated_at"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TenantContact)
class TenantContactAdmin(admin.ModelAdmin):
    list_display = ["tenant", "email", "name"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    search_fields = ["^email", "tenant__slug"]
