from django.contrib import admin
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView

from incidents.api import alertmanager
from incidents.views.runbooks import runbook_detail, runbook_list
from integrations.api import webhooks
from integrations.api.metrics import metrics_view

urlpatterns = [
    # The bare address leads to the console (its login when signed out), not to a "Not Found".
    path("", RedirectView.as_view(url=reverse_lazy("admin:index")), name="root"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("webhooks/<str:provider>/<slug:tenant_slug>/", webhooks.receive, name="webhook"),
    path("api/v1/alerts", alertmanager, name="alerts"),  # before the API's catch-all
    path("api/v1/", include("integrations.api.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("runbooks/", runbook_list, name="runbooks"),
    path("runbooks/<str:code>/", runbook_detail, name="runbook"),
    path("integrations/", include("integrations.admin.credential_urls")),
]
