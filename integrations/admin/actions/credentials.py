"""Admin actions for the credentials operations: Reconnect and Rotate credentials."""

from django import forms
from django.contrib import admin, messages

from integrations import services
from integrations.access.actors import MANAGE_CREDENTIALS
from integrations.admin.confirm import run_confirmed_action
from integrations.models import AuditAction


class RotateForm(forms.Form):
    store_in_vault = forms.BooleanField(
        required=False,
        initial=True,
        label="Re-encrypt with the newest key",
        help_text="Re-encrypt every stored credential with the first key of FERNET_KEYS, so older keys can be dropped.",
    )


@admin.action(description="Reconnect", permissions=["operate"])
def reconnect(modeladmin, request, queryset):
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Reconnect",
        verb="Reconnect",
        explanation="OAuth integrations refresh their token and make a test call; API-key integrations test "
        "the stored key. Those whose refresh is refused become needs re-auth: re-authorize them from "
        "their page (RB-02).",
        service=lambda qs, data: services.integrations_reconnect(integrations=qs, actor=request.user),
    )


def rotate_selection(queryset, *, actor, store_in_vault: bool):
    """Rotate credentials of the selected integrations, provider by provider; one ActionResult with the sums."""
    total = services.ActionResult(
        action=AuditAction.CREDENTIALS_ROTATE, details={"n_refreshed": 0, "n_reencrypted": 0, "n_failed": 0}
    )
    providers = queryset.order_by().values_list("provider", flat=True).distinct()
    for provider in sorted(set(providers)):
        r = services.credentials_rotate(
            provider=provider,
            actor=actor,
            store_in_vault=store_in_vault,
            integrations=queryset.filter(provider=provider),
        )
        total.changed += r.changed
        total.unchanged += r.unchanged
        for key in total.details:
            total.details[key] += r.details[key]
    return total


@admin.action(description="Rotate credentials", permissions=["operate"])
def rotate_credentials(modeladmin, request, queryset):
    # permissions=["operate"] keeps the action listed for operators' checks; the right that counts is this one.
    if not request.user.has_perm(MANAGE_CREDENTIALS):
        modeladmin.message_user(
            request, "Rotating credentials needs the right to manage credentials.", messages.ERROR
        )
        return None
    return run_confirmed_action(
        modeladmin,
        request,
        queryset,
        title="Rotate credentials",
        verb="Rotate credentials",
        form_class=RotateForm,
        explanation="RB-09 recovery 2: OAuth integrations get a new access token; with re-encryption every "
        "stored credential is re-encrypted with the newest key.",
        service=lambda qs, data: rotate_selection(
            qs, actor=request.user, store_in_vault=data["store_in_vault"]
        ),
    )


INTEGRATION_ACTIONS: list = [reconnect, rotate_credentials]
