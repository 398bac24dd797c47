"""Celery tasks: thin entry points that take ids and call the engine or a service.

Importing this package registers every task (Celery's autodiscovery imports `integrations.tasks`). Services
never import it: they enqueue by task name (`integrations.services.common.enqueue_after_commit`).
"""

from integrations.tasks import recovery, sync

__all__ = ["recovery", "sync"]
