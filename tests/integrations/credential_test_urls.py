"""The project's URLs plus the credential screens, mounted as lineup_ops/urls.py and IntegrationAdmin.get_urls will."""

from django.contrib import admin
from django.urls import include, path

from integrations.admin import credentials as credential_views
from integrations.models import Integration
from lineup_ops import urls as project_urls

_admin_patterns = [
    path(
        "integrations/integration/", include(credential_views.admin_urls(admin.site._registry[Integration]))
    ),
    *admin.site.get_urls(),
]

urlpatterns = [
    path("admin/", (_admin_patterns, "admin", admin.site.name)),
    path("integrations/", include("integrations.admin.credential_urls")),
    *[p for p in project_urls.urlpatterns if str(p.pattern) != "admin/"],
]
