"""Celery tasks: thin callers of services, taking ids, returning early when there is nothing to do."""
from celery import shared_task

from . import services


@shared_task(name="integrations.resume_expired_pauses", queue="default")
def resume_expired_pauses() -> int:
    return services.integrations_resume_expired_pauses().changed
