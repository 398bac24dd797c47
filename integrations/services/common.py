"""What every service shares: the result it returns, the audit row it writes, and enqueueing by task name.

Services never import `integrations.tasks`: they enqueue by the task's registered name after the transaction
commits, so the layers stay one-way (tasks call services, never the other way round).
"""

from dataclasses import dataclass, field
from functools import partial

from celery import signature
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import ngettext

from integrations.access.actors import Actor, audit_fields
from integrations.models import AuditEvent, Integration

# Chunk size for set-based changes that also write one audit row per integration.
CHUNK = 2000
PRIORITY_QUEUE = "priority"


@dataclass
class ActionResult:
    """What an action did: how many it changed and how many were already in the wanted state."""

    action: str
    changed: int = 0
    unchanged: int = 0
    details: dict = field(default_factory=dict)
    read_only: bool = False  # a check (Verify sync): its message gives its counts, not "0 rows changed"

    @property
    def total(self) -> int:
        return self.changed + self.unchanged

    def describe(self, verb: str) -> str:
        """'Pause sync: 2 rows changed, 1 already so.' (plus each `n_*` detail: ', queued in background: 3')."""
        parts = [] if self.read_only else [f"{self.changed} {ngettext('row', 'rows', self.changed)} changed"]
        if self.unchanged:
            parts.append(f"{self.unchanged} already so")
        for key, value in self.details.items():
            if key.startswith("n_"):
                parts.append(f"{key[2:].replace('_', ' ')}: {value}")
        return f"{verb}: {', '.join(parts)}."


def as_queryset(integrations) -> QuerySet:
    if isinstance(integrations, Integration):
        return Integration.objects.filter(pk=integrations.pk)
    return integrations


def audit(
    *,
    actor: Actor,
    action: str,
    integration: Integration | None = None,
    tenant=None,
    provider: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Write one audit row; services call this for actions that are not about a set of integrations."""
    if integration is not None:
        tenant = tenant or integration.tenant
        provider = provider or integration.provider
    return AuditEvent.objects.create(
        action=action,
        integration=integration,
        tenant=tenant,
        provider=provider,
        details=details or {},
        **audit_fields(actor),
    )


def enqueue_after_commit(task_name: str, *args, **options) -> None:
    """Send a Celery task by name once the current transaction commits (the task must see what was saved)."""
    transaction.on_commit(partial(signature(task_name, args=args).apply_async, **options))
