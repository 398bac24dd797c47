from django.contrib import admin
from django.urls import path

from integrations import webhooks

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/<str:provider>/<slug:tenant_slug>/", webhooks.receive, name="webhook"),
]
