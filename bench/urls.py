"""The console's URLs plus the stock admin site the changelist baseline runs on (bench only)."""

from django.urls import path

from bench.stock_admin import stock_site
from lineup_ops.urls import urlpatterns as console

urlpatterns = [path("stock-admin/", stock_site.urls), *console]
