"""The health dashboard as a page of its own (the admin index shows the same panel first)."""

from django.contrib import admin
from django.template.response import TemplateResponse


def home(request):
    # The panel's data is read by the {% health_dashboard %} tag, so that this page and the admin index agree.
    context = {
        **admin.site.each_context(request),
        "title": "Integration health",
        "is_nav_sidebar_enabled": False,  # the tables need the width of a laptop screen
    }
    return TemplateResponse(request, "dashboard/home.html", context)
