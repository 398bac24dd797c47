from django.urls import path, re_path

from integrations.api import views

app_name = "api"
urlpatterns = [
    path("integrations/status", views.integrations_status, name="integrations-status"),
    path("integrations/<str:provider>/status", views.provider_status, name="provider-status"),
    path("integrations/<str:provider>/refresh", views.provider_refresh, name="provider-refresh"),
    path("integrations/<str:provider>/sync-logs", views.sync_logs, name="sync-logs"),
    path("integrations/<str:provider>/sync-logs/<int:log_id>", views.sync_log_detail, name="sync-log"),
    path("integrations/<str:provider>/failures", views.failures, name="failures"),
    path("integrations/<str:provider>/retry-failed", views.retry_failed, name="retry-failed"),
    path("integrations/<str:provider>/restore-quota", views.restore_quota, name="restore-quota"),
    path("conflicts/<int:defect_id>/resolve", views.conflict_resolve, name="conflict-resolve"),
    path("system-metrics/queues", views.queues, name="queues"),
    path(
        "admin/tenants/<str:tenant_id>/integrations/<str:provider>",
        views.admin_integration,
        name="admin-integration",
    ),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
