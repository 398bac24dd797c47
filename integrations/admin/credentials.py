"""Credential screens: re-authorization (consent redirect and callback), Reconnect and Update API key.

Thin: each view checks the right, calls one service and reports. The admin views are mounted by
IntegrationAdmin.get_urls through `admin_urls()`.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from integrations import errors, services
from integrations.access.actors import MANAGE_CREDENTIALS, OPERATE
from integrations.models import AuthType, Integration
from integrations.services import credentials as cred


def _change_url(pk: int) -> str:
    return reverse("admin:integrations_integration_change", args=[pk])


def _error_page(request, message: str, *, integration: Integration | None = None, status: int = 400):
    context = {
        **admin.site.each_context(request),
        "title": "Re-authorization failed",
        "message": message,
        "integration": integration,
        "change_url": _change_url(integration.pk) if integration else None,
    }
    return TemplateResponse(request, "integrations/oauth_error.html", context, status=status)


# ------------------------------------------------------------------------------------------ re-authorization


@require_GET
@staff_member_required
def authorize(request, pk: int):
    """Send the operator to the provider's consent page (RB-02 step 2)."""
    if not request.user.has_perm(MANAGE_CREDENTIALS):
        raise PermissionDenied("Re-authorizing needs the right to manage credentials.")
    integration = get_object_or_404(Integration, pk=pk)
    redirect_uri = request.build_absolute_uri(reverse("integration_oauth_callback"))
    try:
        url = services.integration_authorize_start(
            integration=integration, actor=request.user, redirect_uri=redirect_uri, session=request.session
        )
    except errors.ServiceError as e:
        return _error_page(request, e.message, integration=integration)
    return HttpResponseRedirect(url)


@require_GET
@staff_member_required
def oauth_callback(request):
    """The provider's redirect back: exchange the code, or show why nothing changed."""
    if not request.user.has_perm(MANAGE_CREDENTIALS):
        raise PermissionDenied("Re-authorizing needs the right to manage credentials.")
    try:
        result = services.integration_authorize_complete(
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            actor=request.user,
            session=request.session,
            error=request.GET.get("error", ""),
        )
    except errors.ServiceError as e:
        return _error_page(request, e.message)
    pk = result.details["integration_id"]
    messages.success(
        request,
        f"Re-authorized {Integration.objects.select_related('tenant').get(pk=pk)}: "
        "new tokens stored, the integration is connected.",
    )
    return HttpResponseRedirect(_change_url(pk))


# ------------------------------------------------------------------------------------------ admin views


class ApiKeyForm(forms.Form):
    # render_value=False: a posted key is never sent back to the browser, not even after an error.
    api_key = forms.CharField(
        label="New API key",
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"size": 60, "autocomplete": "off"}),
    )


def reconnect_view(request, object_id: str, model_admin):
    """The change page's Reconnect button: refresh (OAuth) or test the key, then say what to do next."""
    integration = _integration_or_404(object_id)
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied("Reconnecting needs the right to operate integrations.")
    try:
        result = services.integration_reconnect(integration=integration, actor=request.user)
    except (errors.ServiceError, PermissionDenied) as e:
        model_admin.message_user(request, getattr(e, "message", str(e)), messages.ERROR)
        return HttpResponseRedirect(_change_url(integration.pk))
    outcome, text = result.details["outcome"], result.details["message"]
    can_manage = request.user.has_perm(MANAGE_CREDENTIALS)
    if outcome == cred.NEEDS_REAUTH and can_manage and authorize_url_for(integration.pk):
        text = format_html(
            '{} <a href="{}" id="lo-reauthorize-link">Re-authorize</a>',
            text,
            authorize_url_for(integration.pk),
        )
    elif outcome == cred.UPDATE_API_KEY and can_manage:
        text = format_html(
            '{} <a href="{}">Update API key</a>',
            text,
            reverse("admin:integrations_integration_api_key", args=[integration.pk]),
        )
    level = {
        cred.CONNECTED: messages.SUCCESS,
        cred.REFRESHED: messages.SUCCESS,
        cred.FAILED: messages.ERROR,
    }.get(outcome, messages.WARNING)
    model_admin.message_user(request, text, level)
    return HttpResponseRedirect(_change_url(integration.pk))


def api_key_view(request, object_id: str, model_admin):
    """Update API key: the key is tested at the provider before it replaces the stored one."""
    integration = _integration_or_404(object_id, Integration.objects.select_related("tenant"))
    if not request.user.has_perm(MANAGE_CREDENTIALS):
        raise PermissionDenied("Updating an API key needs the right to manage credentials.")
    if integration.auth_type != AuthType.API_KEY:
        model_admin.message_user(request, errors.NOT_API_KEY, messages.ERROR)
        return HttpResponseRedirect(_change_url(integration.pk))
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.integration_update_api_key(
                integration=integration, actor=request.user, api_key=form.cleaned_data["api_key"]
            )
        except errors.ServiceError as e:
            form.add_error("api_key", e.message)
        else:
            model_admin.message_user(
                request,
                f"API key of {integration} updated: the provider accepted it, the integration is connected.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(_change_url(integration.pk))
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Update API key: {integration}",
        "opts": opts,
        "original": integration,
        "form": form,
        "change_url": _change_url(integration.pk),
    }
    return TemplateResponse(request, "admin/integrations/integration/api_key.html", context)


def _integration_or_404(object_id: str, queryset=None) -> Integration:
    """A non-numeric id is a 404, not a 500 (issue 13, L9)."""
    pk = unquote(str(object_id))
    if not pk.isdigit():
        raise Http404("No such integration.")
    return get_object_or_404(queryset if queryset is not None else Integration.objects.all(), pk=int(pk))


def webhook_secret_view(request, object_id: str, model_admin):
    """Generate webhook secret: GET asks, POST rotates and shows the new secret once, in this page only
    (never in a message cookie)."""
    integration = _integration_or_404(object_id, Integration.objects.select_related("tenant"))
    if not request.user.has_perm(MANAGE_CREDENTIALS):
        raise PermissionDenied("Webhook secrets need the right to manage credentials.")
    secret = ""
    if request.method == "POST":
        try:
            result = services.integration_rotate_webhook_secret(integration=integration, actor=request.user)
        except errors.ServiceError as e:
            model_admin.message_user(request, e.message, messages.ERROR)
            return HttpResponseRedirect(_change_url(integration.pk))
        secret = result.details["secret"]
        integration.refresh_from_db()
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Webhook secret: {integration}",
        "opts": opts,
        "original": integration,
        "secret": secret,
        "webhook_url": integration.webhook_url,
        "change_url": _change_url(integration.pk),
    }
    response = TemplateResponse(request, "admin/integrations/integration/webhook_secret.html", context)
    response["Cache-Control"] = "no-store"
    return response


def admin_urls(model_admin) -> list:
    """URL patterns for IntegrationAdmin.get_urls (put them before the default ones)."""
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<path:object_id>/api-key/",
            wrap(lambda request, object_id: api_key_view(request, object_id, model_admin)),
            name="integrations_integration_api_key",
        ),
        path(
            "<path:object_id>/webhook-secret/",
            wrap(lambda request, object_id: webhook_secret_view(request, object_id, model_admin)),
            name="integrations_integration_webhook_secret",
        ),
        path(
            "<path:object_id>/reconnect/",
            wrap(require_POST(lambda request, object_id: reconnect_view(request, object_id, model_admin))),
            name="integrations_integration_reconnect",
        ),
    ]


def authorize_url_for(pk: int) -> str | None:
    """The Re-authorize link, or None while credential_urls is not mounted."""
    try:
        return reverse("integration_authorize", args=[pk])
    except NoReverseMatch:
        return None
