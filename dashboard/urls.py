from django.contrib import admin
from django.urls import path

from dashboard import views

app_name = "dashboard"

# admin_view: staff login required (redirects to the admin login), never cached.
urlpatterns = [
    path("", admin.site.admin_view(views.home), name="home"),
]
