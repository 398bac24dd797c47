"""Re-authorization URLs; mounted under /integrations/ by lineup_ops/urls.py."""

from django.urls import path

from integrations.admin import credentials as credential_views

urlpatterns = [
    path("<int:pk>/authorize/", credential_views.authorize, name="integration_authorize"),
    path("oauth/callback/", credential_views.oauth_callback, name="integration_oauth_callback"),
]
