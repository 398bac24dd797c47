"""The Celery app; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

from lineup_ops import broker

# Before any connection is made: redis:// URLs get kombu's Redis transport with our reconnect fix.
broker.register()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lineup_ops.settings")

app = Celery("lineup_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
