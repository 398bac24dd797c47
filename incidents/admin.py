"""The incident tracker's screens (the full tracker page comes with the incidents issue)."""
from django.contrib import admin

from integrations.admin_utils import badge

from .models import ChecklistItem, Incident, IncidentEvent, Postmortem


class ChecklistItemInline(admin.TabularInline):
    model = ChecklistItem
    extra = 0
    fields = ["phase", "position", "text", "action", "check_name", "done", "done_by", "done_at", "check_result"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0
    fields = ["at", "kind", "actor", "message"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "title", "severity_badge", "status_badge", "provider", "runbook", "detected_by",
                    "opened_at", "commander"]
    list_filter = ["status", "severity", "provider", "runbook"]
    list_select_related = ["commander"]
    search_fields = ["=id", "=provider", "title"]
    autocomplete_fields = ["commander"]
    filter_horizontal = ["affected_tenants"]
    inlines = [ChecklistItemInline, IncidentEventInline]
    readonly_fields = ["opened_at", "acknowledged_at", "contained_at", "recovering_at", "verifying_at",
                       "resolved_at", "closed_at", "last_detected_at"]

    @admin.display(description="Severity", ordering="severity")
    def severity_badge(self, obj):
        return badge(obj.severity)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())


@admin.register(Postmortem)
class PostmortemAdmin(admin.ModelAdmin):
    list_display = ["incident", "author", "updated_at"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident"]
