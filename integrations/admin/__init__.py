"""The console's screens for integrations. Thin: every action calls one service."""

import json

from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from integrations import services
from integrations.access.actors import OPERATE
from integrations.admin.actions import credentials, diagnostics, recovery
from integrations.admin.confirm import run_confirmed_action
from integrations.admin.display import badge
from integrations.admin.filters import TimeWindowFilter, TokenExpiryFilter
from integrations.admin.forms import IntegrationForm, OptionalReasonForm, ReasonForm
from integrations.admin.paginator import EstimatedCountPaginator
from integrations.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    Defect,
    FieldMapping,
    Integration,
    Record,
    RecordLink,
    SyncLog,
    Tenant,
    WebhookDelivery,
)

admin.site.site_header = "Lineup Ops"
admin.site.site_title = "Lineup Ops"
admin.site.index_title = "Integration operations"
admin.site.site_url = None  # no public site behind the console


class OperateMixin:
    """Actions marked permissions=["operate"] are offered only to users who may operate integrations."""

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm(OPERATE)


class BigTableAdmin(OperateMixin, admin.ModelAdmin):
    """Settings for tables that grow to millions of rows (../shared/docs/ENGINEERING.md, "Django admin on big tables")."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 50


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "integration_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["^name", "=slug"]
    search_help_text = "Name (starts with) or exact slug."
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_integrations=Count("integrations"))

    @admin.display(description="Integrations", ordering="n_integrations")
    def integration_count(self, obj):
        return obj.n_integrations


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 0


@admin.register(Integration)
class IntegrationAdmin(OperateMixin, admin.ModelAdmin):
    form = IntegrationForm
    list_display = [
        "__str__",
        "status_badge",
        "mode",
        "is_critical",
        "token_expiry",
        "last_success_at",
        "last_error_at",
        "last_error_short",
    ]
    list_display_links = ["__str__"]
    list_filter = [
        "provider",
        "status",
        "category",
        "mode",
        "is_critical",
        TokenExpiryFilter,
        ("tenant", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["tenant"]
    search_fields = ["=tenant__slug", "^tenant__name", "=provider"]
    search_help_text = "Tenant slug (exact), tenant name (starts with) or provider."
    autocomplete_fields = ["tenant"]
    inlines = [FieldMappingInline]
    actions = [
        "pause_sync",
        "resume_sync",
        "disable",
        "enable",
        *credentials.INTEGRATION_ACTIONS,
        *recovery.INTEGRATION_ACTIONS,
        *diagnostics.INTEGRATION_ACTIONS,
    ]
    readonly_fields = [
        "status_badge",
        "credentials_state",
        "sync_paused",
        "sync_paused_reason",
        "sync_paused_until",
        "enabled",
        "expires_at",
        "last_refreshed_at",
        "last_success_at",
        "last_error_at",
        "last_error_category",
        "last_error",
        "last_polled_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["tenant", "provider", "category", "auth_type", "status_badge", "base_url"]}),
        (
            "Sync",
            {
                "fields": [
                    "enabled",
                    "sync_paused",
                    "sync_paused_reason",
                    "sync_paused_until",
                    "mode",
                    "poll_interval",
                    "enrichment_defer_on_error",
                    "is_critical",
                ]
            },
        ),
        (
            "Credentials",
            {
                "fields": ["credentials_state", "expires_at", "last_refreshed_at"],
                "description": "Secrets are encrypted at rest and never shown.",
            },
        ),
        (
            "Health",
            {
                "fields": [
                    "last_success_at",
                    "last_error_at",
                    "last_error_category",
                    "last_error",
                    "last_polled_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    # Switches that runbook actions own (and audit) are read-only here; so is what the integration is.
    ACTION_OWNED = ["mode", "poll_interval", "enrichment_defer_on_error"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["tenant", "provider", "category", "auth_type", *self.ACTION_OWNED]
        return fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.audit(
            actor=request.user,
            action=AuditAction.INTEGRATION_UPDATE if change else AuditAction.INTEGRATION_CREATE,
            integration=obj,
            details={"changed": sorted(form.changed_data)},
        )

    def get_urls(self):
        from integrations.admin.credentials import admin_urls

        return admin_urls(self) + super().get_urls()

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Token expires", ordering="expires_at")
    def token_expiry(self, obj):
        if obj.expires_at is None:
            return "—"
        if obj.expires_at <= timezone.now():
            return badge("error", "expired")
        return obj.expires_at

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(60) if obj.last_error else ""

    @admin.display(description="Credentials")
    def credentials_state(self, obj):
        if not obj.has_credentials:
            return "None stored"
        return f"Stored, encrypted ({obj.get_auth_type_display()})"

    @admin.action(description="Pause sync", permissions=["operate"])
    def pause_sync(self, request, queryset):
        return run_confirmed_action(
            self,
            request,
            queryset,
            title="Pause sync",
            verb="Pause sync",
            form_class=ReasonForm,
            explanation="Paused integrations make no calls to their provider until resumed.",
            service=lambda qs, data: services.integration_pause(
                integrations=qs, actor=request.user, reason=data["reason"]
            ),
        )

    @admin.action(description="Resume sync", permissions=["operate"])
    def resume_sync(self, request, queryset):
        return run_confirmed_action(
            self,
            request,
            queryset,
            title="Resume sync",
            verb="Resume sync",
            service=lambda qs, data: services.integration_resume(integrations=qs, actor=request.user),
        )

    @admin.action(description="Disable", permissions=["operate"])
    def disable(self, request, queryset):
        return run_confirmed_action(
            self,
            request,
            queryset,
            title="Disable integrations",
            verb="Disable",
            form_class=OptionalReasonForm,
            explanation="Disabled integrations stop syncing and receive no webhooks until enabled (RB-01 step 4).",
            service=lambda qs, data: services.integration_disable(
                integrations=qs, actor=request.user, reason=data["reason"]
            ),
        )

    @admin.action(description="Enable", permissions=["operate"])
    def enable(self, request, queryset):
        return run_confirmed_action(
            self,
            request,
            queryset,
            title="Enable integrations",
            verb="Enable",
            service=lambda qs, data: services.integration_enable(integrations=qs, actor=request.user),
        )


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@admin.register(SyncLog)
class SyncLogAdmin(BigTableAdmin):
    actions = recovery.SYNCLOG_ACTIONS
    list_display = [
        "created_at",
        "provider",
        "tenant",
        "direction",
        "operation",
        "status_badge",
        "error_category",
        "http_status",
        "endpoint",
        "attempt",
        "error_short",
    ]
    list_filter = ["status", "error_category", "provider", TimeWindowFilter, "direction"]
    list_select_related = ["tenant"]
    ordering = ["-created_at", "-id"]
    search_fields = ["=record__id", "=integration__id"]
    search_help_text = "Exact record id or integration id."
    raw_id_fields = ["integration", "tenant", "record"]
    readonly_fields = [
        "integration",
        "tenant",
        "provider",
        "direction",
        "object_type",
        "record",
        "operation",
        "status_badge",
        "error_category",
        "error_field",
        "http_status",
        "error_message",
        "endpoint",
        "attempt",
        "next_attempt_at",
        "rate_limit",
        "request",
        "response",
        "duration_ms",
        "created_at",
        "finished_at",
    ]
    exclude = ["status", "rate_limit_headers", "request_excerpt", "response_excerpt"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Error")
    def error_short(self, obj):
        text = obj.error_message
        if obj.error_field:
            text = f"[{obj.error_field}] {text}"
        return Truncator(text).chars(80)

    @admin.display(description="Rate-limit headers")
    def rate_limit(self, obj):
        return (
            format_html('<pre class="lo-excerpt">{}</pre>', _pretty_json(obj.rate_limit_headers))
            if obj.rate_limit_headers
            else "—"
        )

    @admin.display(description="Request (redacted)")
    def request(self, obj):
        return format_html('<pre class="lo-excerpt">{}</pre>', obj.request_excerpt or "—")

    @admin.display(description="Response (redacted)")
    def response(self, obj):
        return format_html('<pre class="lo-excerpt">{}</pre>', obj.response_excerpt or "—")


class RecordLinkInline(admin.TabularInline):
    model = RecordLink
    extra = 0
    raw_id_fields = ["integration"]
    readonly_fields = ["integration", "remote_id", "synced_at", "remote_updated_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Record)
class RecordAdmin(BigTableAdmin):
    actions = diagnostics.RECORD_ACTIONS
    list_display = [
        "id",
        "kind",
        "tenant",
        "label",
        "crm_sync_status_badge",
        "enrichment_status",
        "updated_at",
    ]
    list_filter = ["kind", "crm_sync_status", "enrichment_status"]
    list_select_related = ["tenant"]
    ordering = ["-updated_at", "-id"]
    search_fields = ["=id", "=external_id"]
    search_help_text = "Exact record id or external id (lineup_id)."
    raw_id_fields = ["tenant"]
    readonly_fields = ["external_id", "created_at", "updated_at"]
    inlines = [RecordLinkInline]

    @admin.display(description="Record")
    def label(self, obj):
        p = obj.payload or {}
        return (
            p.get("email")
            or p.get("name")
            or " ".join(filter(None, [p.get("first_name"), p.get("last_name")]))
        )

    @admin.display(description="CRM sync", ordering="crm_sync_status")
    def crm_sync_status_badge(self, obj):
        return badge(obj.crm_sync_status, obj.get_crm_sync_status_display())


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(BigTableAdmin):
    actions = recovery.WEBHOOK_ACTIONS
    list_display = [
        "received_at",
        "provider",
        "integration",
        "event_id",
        "status_badge",
        "attempts",
        "max_retries",
        "next_attempt_at",
        "error_short",
    ]
    list_filter = [
        "status",
        "provider",
        type("ReceivedFilter", (TimeWindowFilter,), {"field_name": "received_at"}),
    ]
    list_select_related = ["integration__tenant"]
    ordering = ["-received_at", "-id"]
    search_fields = ["=event_id"]
    search_help_text = "Exact event id."
    raw_id_fields = ["integration"]
    readonly_fields = ["received_at", "processed_at"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Last error")
    def error_short(self, obj):
        return Truncator(obj.last_error).chars(80)


@admin.register(Defect)
class DefectAdmin(BigTableAdmin):
    actions = recovery.DEFECT_ACTIONS
    list_display = [
        "created_at",
        "defect_type",
        "provider",
        "tenant",
        "record",
        "status_badge",
        "resolution_short",
        "resolved_at",
        "resolved_by",
    ]
    list_filter = ["status", "defect_type", "provider", TimeWindowFilter]
    list_select_related = ["tenant", "record"]
    ordering = ["-created_at", "-id"]
    search_fields = ["=record__id"]
    search_help_text = "Exact record id."
    raw_id_fields = ["tenant", "integration", "record"]
    readonly_fields = ["created_at", "resolved_at", "resolved_by", "conflict_values"]
    exclude = ["details"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Conflicting values (base / ours / theirs)")
    def conflict_values(self, obj):
        """A SYNC_CONFLICT's fields: the value last agreed, ours and the provider's ("Keep ours" / "Take theirs")."""
        entries = (obj.details or {}).get("fields") or {}
        if not entries:
            return "-"
        return format_html(
            '<table class="lo-conflict"><tr><th>field</th><th>base</th><th>ours</th><th>theirs</th></tr>{}</table>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (name, repr(e.get("base")), repr(e.get("ours")), repr(e.get("theirs")))
                    for name, e in sorted(entries.items())
                ),
            ),
        )

    @admin.display(description="Resolution")
    def resolution_short(self, obj):
        return Truncator(obj.resolution).chars(60)


@admin.register(AuditEvent)
class AuditEventAdmin(BigTableAdmin):
    list_display = [
        "created_at",
        "actor",
        "actor_type",
        "action",
        "provider",
        "tenant",
        "integration",
        "summary",
    ]
    list_filter = ["action", "provider", "actor_type", TimeWindowFilter]
    list_select_related = ["tenant", "integration__tenant"]
    ordering = ["-created_at", "-id"]
    search_fields = ["=actor", "=action"]
    search_help_text = "Exact actor name or action."

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Details")
    def summary(self, obj):
        return Truncator(json.dumps(obj.details, sort_keys=True, default=str)).chars(100)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "scope",
        "tenant",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["tenant", "created_by"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    autocomplete_fields = ["tenant"]
    actions = ["revoke"]

    fields = ["name", "scope", "tenant"]

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.fields + self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        # A token's scope is fixed at creation: revoke it and make a new one instead.
        return self.readonly_fields if obj is None else self.fields + self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, raw = services.api_token_create(
            actor=request.user, name=obj.name, scope=obj.scope, tenant=obj.tenant
        )
        obj.pk = token.pk
        self.message_user(
            request, f"Token created. Copy it now, it will not be shown again: {raw}", messages.WARNING
        )

    @admin.action(description="Revoke", permissions=["change"])
    def revoke(self, request, queryset):
        return run_confirmed_action(
            self,
            request,
            queryset,
            title="Revoke API tokens",
            verb="Revoke",
            explanation="Revoked tokens are refused by the API from now on.",
            service=lambda qs, data: services.api_token_revoke(tokens=qs, actor=request.user),
        )
