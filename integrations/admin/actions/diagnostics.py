"""Admin actions for RB-01's connectivity test and RB-03's pause of non-critical syncs."""

from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from integrations import services
from integrations.admin.confirm import run_confirmed_action
from integrations.admin.forms import ReasonForm
from integrations.models import AuditAction, Integration, PauseSource


@admin.action(description="Test connectivity (DNS, TCP, TLS, HTTP)", permissions=["operate"])
def test_connectivity(modeladmin, request, queryset):
    limit = settings.CONNECTIVITY_MAX_TARGETS
    count = queryset.count()
    if count > limit:
        modeladmin.message_user(
            request,
            f"Select at most {limit} integrations to test at once ({count} selected).",
            messages.ERROR,
        )
        return None
    results = services.integration_test_connectivity(integrations=queryset, actor=request.user)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Test connectivity",
        "opts": modeladmin.model._meta,
        "results": results,
    }
    return TemplateResponse(request, "admin/lineup/connectivity.html", context)


def _non_critical_of(queryset):
    providers = set(queryset.values_list("provider", flat=True))
    return providers, Integration.objects.filter(provider__in=providers, is_critical=False)


@admin.action(description="Pause non-critical syncs of these providers (RB-03)", permissions=["operate"])
def pause_non_critical(modeladmin, request, queryset):
    providers, targets = _non_critical_of(queryset)

    def run(qs, data):
        total = services.ActionResult(action=AuditAction.INTEGRATION_PAUSE, details={})
        for provider in sorted(providers):
            r = services.integrations_pause_non_critical(
                provider=provider, actor=request.user, reason=data["reason"]
            )
            total.changed += r.changed
            total.unchanged += r.unchanged
            total.details["n_critical_still_syncing"] = (
                total.details.get("n_critical_still_syncing", 0) + r.details["n_critical_still_syncing"]
            )
        return total

    return run_confirmed_action(
        modeladmin,
        request,
        targets,
        title="Pause non-critical syncs",
        verb="Pause non-critical syncs",
        form_class=ReasonForm,
        service=run,
        explanation=f"Every integration of {', '.join(sorted(providers))} whose 'is critical' is off is paused; "
        "critical integrations keep syncing inside the provider's quota.",
    )


@admin.action(description="Resume non-critical syncs of these providers (RB-03)", permissions=["operate"])
def resume_non_critical(modeladmin, request, queryset):
    providers, _ = _non_critical_of(queryset)
    targets = Integration.objects.filter(
        provider__in=providers, sync_paused=True, sync_paused_source=PauseSource.NON_CRITICAL
    )

    def run(qs, data):
        total = services.ActionResult(action=AuditAction.INTEGRATION_RESUME)
        for provider in sorted(providers):
            r = services.integrations_resume_non_critical(provider=provider, actor=request.user)
            total.changed += r.changed
            total.unchanged += r.unchanged
        return total

    return run_confirmed_action(
        modeladmin,
        request,
        targets,
        title="Resume non-critical syncs",
        verb="Resume non-critical syncs",
        service=run,
        explanation="Resumes the integrations that 'Pause non-critical syncs' paused, and no others.",
    )


INTEGRATION_ACTIONS: list = [test_connectivity, pause_non_critical, resume_non_critical]


@admin.action(description="Sync now, ahead of the queue (RB-03)", permissions=["operate"])
def sync_now(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Sync now with priority",
        verb="Sync now",
        explanation="These records are pushed before any other queued work of their integrations, still inside "
        "each provider's quota. At most 1,000 records at once.",
        service=lambda qs, data: services.records_sync_now(records=qs, actor=request.user),
    )


RECORD_ACTIONS: list = [sync_now]
