"""The console's screens for integrations. Thin: every action calls one service."""

import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from integrations import services
from integrations.access.actors import OPERATE
from integrations.admin.actions import credentials as credential_actions
from integrations.admin.actions import diagnostics, recovery
from integrations.admin.confirm import run_confirmed_action
from integrations.admin.display import badge, short
from integrations.admin.filters import RetryFilter, TimeWindowFilter, TokenExpiryFilter
from integrations.admin.forms import IntegrationForm, OptionalReasonForm, ReasonForm
from integrations.admin.paginator import EstimatedCountPaginator
from integrations.catalog import PROVIDERS
from integrations.engine import allowlist
from integrations.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    CrmSyncStatus,
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
# Lists fit 1280 px (issue 15): the app list lives on the home page and in the breadcrumbs, not in a sidebar
# that takes a quarter of every list's width.
admin.site.enable_nav_sidebar = False


def changelist_url(model: str, app: str = "integrations", **params) -> str:
    """A list page filtered by `params`; '' when the list is not mounted."""
    try:
        url = reverse(f"admin:{app}_{model}_changelist")
    except NoReverseMatch:
        return ""
    return url + ("?" + urlencode(params) if params else "")


def change_link(obj, label=None):
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


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


class IntegrationBaseUrlForm(IntegrationForm):
    """base_url must be one of the provider's allowed hosts (issue 13, H3): credentials go nowhere else."""

    def clean(self):
        data = super().clean()
        url = (data or {}).get("base_url")
        provider = (data or {}).get("provider") or getattr(self.instance, "provider", "")
        if url and provider:
            problem = allowlist.url_problem(provider, url)
            if problem:
                self.add_error("base_url", problem)
        return data


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 0


@admin.register(Integration)
class IntegrationAdmin(OperateMixin, admin.ModelAdmin):
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
    form = IntegrationBaseUrlForm
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
        *credential_actions.INTEGRATION_ACTIONS,
        *recovery.INTEGRATION_ACTIONS,
        *diagnostics.INTEGRATION_ACTIONS,
    ]
    readonly_fields = [
        "status_badge",
        "credentials_state",
        "webhook_endpoint",
        "webhook_secret_state",
        "provider_account",
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
                "fields": [
                    "credentials_state",
                    "provider_account",
                    "expires_at",
                    "last_refreshed_at",
                    "webhook_endpoint",
                    "webhook_secret_state",
                ],
                "description": "Secrets are encrypted at rest and never shown (a new webhook secret is shown "
                "once, on the Webhook secret page).",
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
        details = {"changed": sorted(form.changed_data)}
        if "base_url" in form.changed_data:
            # Issue 13 (H3): the audit says where credentials go now, and where they went before.
            details["base_url"] = {"old": form.initial.get("base_url", ""), "new": obj.base_url}
        services.audit(
            actor=request.user,
            action=AuditAction.INTEGRATION_UPDATE if change else AuditAction.INTEGRATION_CREATE,
            integration=obj,
            details=details,
        )

    def get_urls(self):
        from integrations.admin.credentials import admin_urls

        return admin_urls(self) + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id) if str(object_id).isdigit() else None
        if obj is not None:
            extra_context = {**(extra_context or {}), **self.page_links(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def page_links(self, request, obj) -> dict:
        """The integration page leads on: its sync logs, records, defects, webhook deliveries, audit and incidents,
        and the webhook URL the provider must call."""
        mine = {"integration__id__exact": obj.pk}
        kind = PROVIDERS[obj.provider].record_kind
        links = [
            ("sync_logs", "Sync logs", changelist_url("synclog", **mine)),
            (
                "failed_sync_logs",
                "Failed sync logs",
                changelist_url("synclog", status__exact="FAILED", **mine),
            ),
            (
                "records",
                "Records",
                changelist_url("record", tenant__id__exact=obj.tenant_id, kind__exact=kind),
            ),
            (
                "unsynced_records",
                "Records left failed or never created",
                changelist_url(
                    "record", tenant__id__exact=obj.tenant_id, kind__exact=kind, unsynced_at=obj.provider
                ),
            ),
            ("defects", "Defects", changelist_url("defect", **mine)),
            ("webhooks", "Webhook deliveries", changelist_url("webhookdelivery", **mine)),
            ("audit", "Audit trail", changelist_url("auditevent", **mine)),
            (
                "incidents",
                "Incidents",
                changelist_url(
                    "incident",
                    app="incidents",
                    provider__exact=obj.provider,
                    affected_tenants__id__exact=obj.tenant_id,
                ),
            ),
        ]
        webhook_url = ""
        if PROVIDERS[obj.provider].supports_webhooks:
            webhook_url = request.build_absolute_uri(
                reverse("webhook", kwargs={"provider": obj.provider, "tenant_slug": obj.tenant.slug})
            )
        return {
            "lo_links": [{"key": k, "label": label, "url": url} for k, label, url in links if url],
            "lo_webhook_url": webhook_url,
        }

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
        return short(obj.last_error, 50)

    @admin.display(description="Webhook URL")
    def webhook_endpoint(self, obj):
        if obj.pk is None or not obj.supports_webhooks:
            return "—"
        return obj.webhook_url

    @admin.display(description="Webhook secret")
    def webhook_secret_state(self, obj):
        return obj.webhook_secret_hint or "None: generate one (Webhook secret)"

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
    # Columns that fit 1280 px: direction and operation share one, the endpoint is in the detail view.
    list_display = [
        "created_at",
        "provider",
        "tenant",
        "what",
        "status_badge",
        "error_category",
        "http_status",
        "attempt",
        "error_short",
    ]
    list_filter = ["status", "error_category", "provider", TimeWindowFilter, RetryFilter, "direction"]
    link_lookups = ("endpoint", "tenant__id", "integration__id")  # the dashboard's links (issue 13, M1)
    list_select_related = ["tenant"]
    ordering = ["-created_at", "-id"]
    search_fields = ["=record__id", "=integration__id"]
    search_help_text = "Exact record id or integration id."
    raw_id_fields = ["integration", "tenant", "record"]
    readonly_fields = [
        "integration_link",
        "tenant",
        "provider",
        "direction",
        "object_type",
        "record_link",
        "incident_link",
        "operation",
        "status_badge",
        "error_category",
        "error_field",
        "http_status",
        "error_message",
        "endpoint",
        "attempt",
        "retry_of_link",
        "retried_by",
        "next_attempt_at",
        "rate_limit",
        "request",
        "response",
        "duration_ms",
        "created_at",
        "finished_at",
    ]
    exclude = [
        "status",
        "rate_limit_headers",
        "request_excerpt",
        "response_excerpt",
        "integration",
        "record",
        "retry_of",
    ]

    @admin.display(description="Operation")
    def what(self, obj):
        return f"{obj.direction} {obj.operation}"

    @admin.display(description="Integration")
    def integration_link(self, obj):
        return change_link(obj.integration)

    @admin.display(description="Record")
    def record_link(self, obj):
        return change_link(obj.record) if obj.record_id else "—"

    @admin.display(description="Retry of")
    def retry_of_link(self, obj):
        """The attempt this one retries (append-only sync log: a retry is a new row pointing at it)."""
        return (
            change_link(obj.retry_of, f"Attempt {obj.retry_of.attempt}: {obj.retry_of}")
            if obj.retry_of_id
            else "—"
        )

    @admin.display(description="Retried by")
    def retried_by(self, obj):
        retries = list(obj.retries.order_by("pk")[:5])
        if not retries:
            return "—"
        return format_html_join(", ", "{}", ((change_link(r, f"Attempt {r.attempt}: {r}"),) for r in retries))

    @admin.display(description="Incident covering it")
    def incident_link(self, obj):
        try:
            url = reverse("admin:incidents_incident_covering")
        except NoReverseMatch:
            return "—"
        query = urlencode(
            {"provider": obj.provider, "at": obj.created_at.isoformat(), "tenant": obj.tenant_id}
        )
        return format_html('<a href="{}?{}">The incident of {} at that time</a>', url, query, obj.provider)

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
        return short(text, 50)

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


class UnsyncedAtFilter(admin.SimpleListFilter):
    """Records left FAILED or never created at a provider (the incident's "no record left" check links here)."""

    title = "left unsynced at"
    parameter_name = "unsynced_at"

    def lookups(self, request, model_admin):
        return [(key, p.name) for key, p in PROVIDERS.items()]

    def queryset(self, request, queryset):
        provider = self.value()
        if provider not in PROVIDERS:
            return queryset
        links = RecordLink.objects.filter(record_id=OuterRef("pk"), integration__provider=provider).filter(
            Q(remote_id="") | Q(failed_at__isnull=False)
        )
        return queryset.filter(kind=PROVIDERS[provider].record_kind).filter(
            Q(crm_sync_status="FAILED") | Q(Exists(links))
        )


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
    list_filter = ["kind", "crm_sync_status", "enrichment_status", UnsyncedAtFilter]
    list_select_related = ["tenant"]
    ordering = ["-updated_at", "-id"]
    search_fields = ["=id", "=external_id"]
    search_help_text = "Exact record id or external id (lineup_id)."
    raw_id_fields = ["tenant"]
    readonly_fields = ["external_id", "created_at", "updated_at"]
    inlines = [RecordLinkInline]

    def save_model(self, request, obj, form, change):
        """A record edited here is a local change like the product's: it shows Pending until it is pushed, in the
        same write as the edit, and its integrations sync at once (after the commit), not at the next sweep."""
        edited = not change or bool({"payload", "tenant", "kind"} & set(form.changed_data))
        pushes = edited and change and services.crm_targets(obj)  # an integration that will push it
        if pushes and "crm_sync_status" not in form.changed_data:
            obj.crm_sync_status = CrmSyncStatus.PENDING
        super().save_model(request, obj, form, change)
        if edited:
            services.records_changed(record_ids=[obj.pk])

    @admin.display(description="Record")
    def label(self, obj):
        p = obj.payload if isinstance(obj.payload, dict) else {}
        return short(
            p.get("email")
            or p.get("name")
            or " ".join(filter(None, [p.get("first_name"), p.get("last_name")])),
            40,
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
        "event_short",
        "status_badge",
        "tries",
        "next_attempt_at",
        "error_short",
    ]
    list_filter = [
        "status",
        "provider",
        type("ReceivedFilter", (TimeWindowFilter,), {"field_name": "received_at"}),
    ]
    link_lookups = ("integration__id",)
    list_select_related = ["integration__tenant"]
    ordering = ["-received_at", "-id"]
    search_fields = ["=event_id"]
    search_help_text = "Exact event id."
    raw_id_fields = ["integration"]
    readonly_fields = ["received_at", "processed_at"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Event")
    def event_short(self, obj):
        return short(obj.event_id, 24)

    @admin.display(description="Attempts")
    def tries(self, obj):
        return f"{obj.attempts} of {obj.max_retries}"

    @admin.display(description="Last error")
    def error_short(self, obj):
        return short(obj.last_error, 50)


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
    ]
    list_filter = ["status", "defect_type", "provider", TimeWindowFilter]
    link_lookups = ("tenant__id",)
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

    # The defect page's buttons run the same confirmed actions as the list, for the one defect shown.
    CONFLICT_CHOICES = {"ours": recovery.conflict_keep_ours, "theirs": recovery.conflict_take_theirs}

    def get_urls(self):
        view = self.admin_site.admin_view(self.conflict_view)
        return [
            path("<path:object_id>/conflict/<str:choice>/", view, name="integrations_defect_conflict")
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id) if str(object_id).isdigit() else None
        if obj is not None and self.has_operate_permission(request):
            if services.open_conflicts(Defect.objects.filter(pk=obj.pk)).exists():
                extra_context = {
                    **(extra_context or {}),
                    "lo_conflict_urls": {
                        choice: reverse("admin:integrations_defect_conflict", args=[obj.pk, choice])
                        for choice in self.CONFLICT_CHOICES
                    },
                }
        return super().change_view(request, object_id, form_url, extra_context)

    def conflict_view(self, request, object_id, choice):
        """POST: "Keep ours" / "Take theirs" for this defect, through the action's confirmation page.
        GET (the confirmation page's "No, take me back") returns to the defect page."""
        action = self.CONFLICT_CHOICES.get(choice)
        if action is None or not str(object_id).isdigit():
            raise Http404
        queryset = self.get_queryset(request).filter(pk=object_id)
        defect = queryset.first()
        if defect is None or not self.has_view_permission(request, defect):
            raise Http404
        page = reverse("admin:integrations_defect_change", args=[defect.pk])
        if request.method != "POST":
            return redirect(page)
        if not self.has_operate_permission(request):
            raise PermissionDenied("Resolving a sync conflict needs the right to operate integrations.")
        if not services.open_conflicts(queryset).exists():
            self.message_user(
                request, "This defect is not an open sync conflict: nothing changed.", messages.WARNING
            )
            return redirect(page)
        return action(self, request, queryset) or redirect(page)

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
        text = obj.resolution + (f" ({obj.resolved_by})" if obj.resolved_by else "")
        return short(text, 40)


@admin.register(AuditEvent)
class AuditEventAdmin(BigTableAdmin):
    list_display = [
        "created_at",
        "who",
        "action",
        "provider",
        "tenant",
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

    @admin.display(description="Who", ordering="actor")
    def who(self, obj):
        return short(f"{obj.actor} ({obj.get_actor_type_display()})", 30)

    @admin.display(description="Details")
    def summary(self, obj):
        return short(json.dumps(obj.details, sort_keys=True, default=str), 60)


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
        # Issue 13: shown once on the response page (response_add), never through the messages cookie.
        request.lineup_new_api_token = raw

    def response_add(self, request, obj, post_url_continue=None):
        raw = getattr(request, "lineup_new_api_token", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": f"API token created: {obj.name}",
            "opts": self.model._meta,
            "original": obj,
            "raw_token": raw,
        }
        response = TemplateResponse(request, "admin/integrations/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

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
