"""Admin actions for the recovery operations (RB-01, RB-04, RB-09), and the bulk-operation progress screen.

Thin: each action confirms with `run_confirmed_action`, calls one service and reports counts. Selections larger
than `bulk.THRESHOLD` rows (retry failed, clear stale defects) return at once and run in the background.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from integrations import services
from integrations.access.actors import OPERATE
from integrations.admin.confirm import run_confirmed_action
from integrations.admin.display import badge
from integrations.admin.forms import (
    MaxRetriesForm,
    PollIntervalForm,
    ReconcileForm,
    ResolutionForm,
    RetryFailedForm,
    SampleSizeForm,
    SinceForm,
)
from integrations.models import AuditAction, BulkOperation, SyncLog, WebhookDelivery
from integrations.services import ActionResult, bulk

# "Reconcile" on more integrations than this queues one background task per integration.
RECONCILE_INLINE_MAX = 10


def _confirming(request) -> bool:
    return request.POST.get("confirm") == "yes"


def _providers(queryset) -> list[str]:
    return sorted(set(queryset.order_by().values_list("provider", flat=True).distinct()))


def _combine(action: str, results: list[ActionResult]) -> ActionResult:
    combined = ActionResult(action=action)
    for result in results:
        combined.changed += result.changed
        combined.unchanged += result.unchanged
        for key, value in result.details.items():
            if key.startswith("n_") and isinstance(value, int):
                combined.details[key] = combined.details.get(key, 0) + value
    return combined


def _started(modeladmin, request, operation: BulkOperation) -> ActionResult:
    """Report a background operation with a link to its progress page."""
    url = reverse("admin:integrations_bulkoperation_change", args=[operation.pk])
    modeladmin.message_user(
        request,
        format_html(
            '{} rows are being processed in the background: <a href="{}">follow the progress</a>.',
            operation.total,
            url,
        ),
        messages.INFO,
    )
    return ActionResult(action=operation.action, details={"n_queued_in_background": operation.total})


def _retry(modeladmin, request, logs) -> ActionResult:
    if bulk.is_large(services.retryable_logs(logs)):
        return _started(
            modeladmin,
            request,
            bulk.start(action=AuditAction.SYNC_LOGS_RETRY_FAILED, queryset=logs, actor=request.user),
        )
    return services.sync_logs_retry_failed(logs=logs, actor=request.user)


# ------------------------------------------------------------------------------------------ sync logs


def _of_which(request, explanation: str, changing, what: str) -> str:
    """The confirmation page says how many of the selected rows the action will change."""
    if _confirming(request):
        return explanation
    return f"{explanation} {changing.count()} of them {what}."


@admin.action(description="Retry failed syncs", permissions=["operate"])
def retry_failed_logs(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Retry failed syncs",
        verb="Retry failed syncs",
        explanation=_of_which(
            request,
            "The FAILED pushes among these sync logs are queued again, due now, oldest first; each is "
            "queued once even if someone else retries them at the same moment. Other rows are left alone.",
            services.retryable_logs(queryset),
            "are failed pushes not retried yet and will be queued",
        ),
        service=lambda qs, data: _retry(modeladmin, request, qs),
    )


# ------------------------------------------------------------------------------------------ integrations


def _logs_of(integrations, data: dict):
    logs = SyncLog.objects.filter(integration__in=integrations.order_by().values("pk"))
    if data.get("error_category"):
        logs = logs.filter(error_category=data["error_category"])
    if data.get("since"):
        logs = logs.filter(created_at__gte=data["since"])
    return logs


@admin.action(description="Retry failed syncs", permissions=["operate"])
def retry_failed_syncs(modeladmin, request, queryset):
    explanation = (
        "Failed pushes of these integrations are queued again, due now, oldest first (RB-04 step 4)."
    )
    if not _confirming(request):
        n = services.retryable_logs(_logs_of(queryset, {})).count()
        explanation += f" They have {n} failed push(es) in all; narrow by category or time below."
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Retry failed syncs",
        verb="Retry failed syncs",
        form_class=RetryFailedForm,
        explanation=explanation,
        service=lambda qs, data: _retry(modeladmin, request, _logs_of(qs, data)),
    )


@admin.action(description="Switch to polling", permissions=["operate"])
def switch_to_polling(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Switch to polling",
        verb="Switch to polling",
        form_class=PollIntervalForm,
        explanation="These integrations stop relying on webhooks and poll their provider at the interval (RB-09 "
        "containment 1).",
        service=lambda qs, data: services.integrations_set_mode(
            integrations=qs, actor=request.user, mode="polling", poll_interval=data["poll_interval"]
        ),
    )


@admin.action(description="Restore webhook mode", permissions=["operate"])
def restore_webhook_mode(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Restore webhook mode",
        verb="Restore webhook mode",
        explanation="Back to webhooks with the default poll interval (RB-09 recovery 5). Providers that send no "
        "webhooks stay polled.",
        service=lambda qs, data: services.integrations_set_mode(
            integrations=qs, actor=request.user, mode="webhook"
        ),
    )


@admin.action(description="Quota is back", permissions=["operate"])
def quota_is_back(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Quota is back",
        verb="Quota is back",
        explanation="The providers of these integrations have their quota again: the block a rate limit left is "
        "cleared and the retries it parked are due now (for every tenant of the provider: the quota is the "
        "provider app's).",
        service=lambda qs, data: _combine(
            AuditAction.PROVIDER_QUOTA_RESTORE,
            [services.provider_quota_restore(provider=slug, actor=request.user) for slug in _providers(qs)],
        ),
    )


@admin.action(description="Defer enrichment on error", permissions=["operate"])
def defer_enrichment_on(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Defer enrichment on error",
        verb="Defer enrichment",
        explanation="Enrichment steps that fail are deferred instead of retried at once (RB-09 containment 2).",
        service=lambda qs, data: services.integrations_set_enrichment_defer(
            integrations=qs, actor=request.user, on=True
        ),
    )


@admin.action(description="Stop deferring enrichment", permissions=["operate"])
def defer_enrichment_off(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Stop deferring enrichment",
        verb="Stop deferring",
        service=lambda qs, data: services.integrations_set_enrichment_defer(
            integrations=qs, actor=request.user, on=False
        ),
    )


def _queue_webhooks(request, deliveries, providers, max_retries) -> ActionResult:
    return _combine(
        AuditAction.WEBHOOKS_QUEUE_RETRIES,
        [
            services.webhooks_queue_retries(
                provider=p, actor=request.user, max_retries=max_retries, deliveries=deliveries
            )
            for p in providers
        ],
    )


@admin.action(description="Queue webhook retries", permissions=["operate"])
def queue_webhook_retries(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Queue webhook retries",
        verb="Queue webhook retries",
        form_class=MaxRetriesForm,
        explanation="FAILED and DEAD webhook deliveries of these integrations are queued for processing again "
        "(RB-09 containment 4).",
        service=lambda qs, data: _queue_webhooks(
            request,
            WebhookDelivery.objects.filter(integration__in=qs.order_by().values("pk")),
            _providers(qs),
            data["max_retries"],
        ),
    )


@admin.action(description="Create stale defects", permissions=["operate"])
def create_stale_defects(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Create stale defects",
        verb="Create stale defects",
        form_class=SinceForm,
        explanation="An open defect for every record these integrations' provider left stale since then (stale "
        "enrichment for enrichment providers, stale CRM sync otherwise; RB-09 containment 3). Records "
        "that already have one are skipped.",
        service=lambda qs, data: _combine(
            AuditAction.DEFECTS_CREATE_STALE,
            [
                services.defects_create_stale(
                    provider=p, since=data["since"], actor=request.user, integrations=qs.filter(provider=p)
                )
                for p in _providers(qs)
            ],
        ),
    )


def _reconcile(modeladmin, request, queryset, since) -> ActionResult:
    if queryset.count() <= RECONCILE_INLINE_MAX:
        return services.integrations_reconcile(integrations=queryset, since=since, actor=request.user)
    result = services.integrations_reconcile_in_background(
        integrations=queryset, since=since, actor=request.user
    )
    modeladmin.message_user(
        request,
        f"{result.details['n_queued_in_background']} reconciles queued in the "
        "background; each writes an 'integration.reconcile' audit event with its counts.",
        messages.INFO,
    )
    return result


@admin.action(description="Reconcile", permissions=["operate"])
def reconcile_since(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Reconcile",
        verb="Reconcile",
        form_class=ReconcileForm,
        explanation="Fetch what changed at the provider since then and apply what is missing or different here "
        "(RB-09 recovery 3). Each reconciled record gets an audit event.",
        service=lambda qs, data: _reconcile(modeladmin, request, qs, data["since"]),
    )


@admin.action(description="Verify sync", permissions=["operate"])
def verify_sync(modeladmin, request, queryset):
    outcome: dict = {}

    def service(qs, data):
        outcome["result"] = services.integrations_verify_sync(
            integrations=qs, sample_size=data["sample_size"], actor=request.user
        )
        outcome["sample_size"] = data["sample_size"]
        return outcome["result"]

    response = run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Verify sync",
        verb="Verify sync",
        form_class=SampleSizeForm,
        explanation="A random sample of linked records per integration is fetched from the provider and compared "
        "field by field (RB-09 verification 3). Nothing is changed.",
        service=service,
    )
    if "result" not in outcome:
        return response
    details = outcome["result"].details
    return TemplateResponse(
        request,
        "admin/lineup/recovery/verify_result.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Verify sync: result",
            "opts": modeladmin.model._meta,
            "sample_size": outcome["sample_size"],
            "checked": details["n_checked"],
            "mismatches": details["mismatches"],
            "n_mismatches": details["n_mismatches"],
            "n_missing": details["n_missing"],
            "pending": details["pending"],
            "errors": details["errors"],
            "back_url": request.get_full_path(),
        },
    )


# ------------------------------------------------------------------------------------------ webhooks, defects


@admin.action(description="Queue webhook retries", permissions=["operate"])
def queue_webhook_retry(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Queue webhook retries",
        verb="Queue webhook retries",
        form_class=MaxRetriesForm,
        explanation=_of_which(
            request,
            "The FAILED and DEAD deliveries among these are queued for processing again; others are left "
            "alone.",
            queryset.filter(status__in=["FAILED", "DEAD"]),
            "are failed or dead and will be queued",
        ),
        service=lambda qs, data: _queue_webhooks(request, qs, _providers(qs), data["max_retries"]),
    )


def _clear(modeladmin, request, defects, resolution: str) -> ActionResult:
    if bulk.is_large(services.clearable_defects(defects=defects)):
        return _started(
            modeladmin,
            request,
            bulk.start(
                action=AuditAction.DEFECTS_CLEAR_STALE,
                queryset=defects,
                actor=request.user,
                params={"resolution": resolution},
            ),
        )
    return services.defects_clear_stale(
        defects=defects, within=None, actor=request.user, resolution=resolution
    )


@admin.action(description="Clear stale defects", permissions=["operate"])
def clear_stale_defects(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Clear stale defects",
        verb="Clear stale defects",
        form_class=ResolutionForm,
        explanation=_of_which(
            request,
            "The OPEN stale-data defects among these are resolved with the resolution below (RB-09 "
            "recovery 4); others are left alone.",
            services.clearable_defects(defects=queryset),
            "are open stale defects and will be resolved",
        ),
        service=lambda qs, data: _clear(modeladmin, request, qs, data["resolution"]),
    )


@admin.action(description="Keep ours (sync conflicts)", permissions=["operate"])
def conflict_keep_ours(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Keep ours",
        verb="Keep ours",
        explanation=_of_which(
            request,
            "For each open sync conflict among these, the local value is kept and pushed to the provider; "
            "other defects are left alone.",
            services.open_conflicts(queryset),
            "are open sync conflicts and will be resolved",
        ),
        service=lambda qs, data: services.conflict_keep_ours(defects=qs, actor=request.user),
    )


@admin.action(description="Take theirs (sync conflicts)", permissions=["operate"])
def conflict_take_theirs(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Take theirs",
        verb="Take theirs",
        explanation=_of_which(
            request,
            "For each open sync conflict among these, the provider's value is applied locally; other defects "
            "are left alone.",
            services.open_conflicts(queryset),
            "are open sync conflicts and will be resolved",
        ),
        service=lambda qs, data: services.conflict_take_theirs(defects=qs, actor=request.user),
    )


INTEGRATION_ACTIONS: list = [
    retry_failed_syncs,
    switch_to_polling,
    restore_webhook_mode,
    defer_enrichment_on,
    defer_enrichment_off,
    queue_webhook_retries,
    create_stale_defects,
    reconcile_since,
    verify_sync,
    quota_is_back,
]
SYNCLOG_ACTIONS: list = [retry_failed_logs]
WEBHOOK_ACTIONS: list = [queue_webhook_retry]
DEFECT_ACTIONS: list = [clear_stale_defects, conflict_keep_ours, conflict_take_theirs]


# ------------------------------------------------------------------------------------------ progress screen

STATUS_TONES = {"queued": "PENDING", "running": "RUNNING", "done": "SUCCESS", "failed": "FAILED"}


@admin.register(BulkOperation)
class BulkOperationAdmin(admin.ModelAdmin):
    """Read-only: what a background bulk action has done so far."""

    change_form_template = "admin/lineup/recovery/bulkoperation_change_form.html"
    list_display = [
        "created_at",
        "action",
        "status_badge",
        "progress",
        "changed",
        "created_by",
        "finished_at",
    ]
    list_filter = ["status", "action"]
    ordering = ["-created_at", "-id"]
    fields = [
        "action",
        "status_badge",
        "progress",
        "total",
        "done",
        "changed",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "options",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(OPERATE) or super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(STATUS_TONES.get(obj.status, obj.status), obj.get_status_display())

    @admin.display(description="Progress")
    def progress(self, obj):
        return format_html(
            '<progress class="lo-progress" max="{}" value="{}"></progress> {} / {} ({}%)',
            obj.total or 1,
            obj.done,
            obj.done,
            obj.total,
            obj.percent,
        )

    @admin.display(description="Options")
    def options(self, obj):
        shown = {
            k: v for k, v in (obj.params or {}).items() if k not in ("query", "selection", "max_pk", "actor")
        }
        return ", ".join(f"{k}: {v}" for k, v in sorted(shown.items())) or "—"
