"""The bulk-action confirmation page: what an action will change, then its counts."""

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from integrations.errors import ServiceError


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
