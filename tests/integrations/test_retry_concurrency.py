"""Two operators press "Retry failed syncs" at the same moment: every failed log is queued exactly once (PostgreSQL)."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from integrations import services
from integrations.access.actors import System
from integrations.models import AuditEvent, Record, RecordLink, SyncLog
from integrations.services import recovery
from tests.support import factories

N = 1000


def _failed_logs(integration, n: int) -> None:
    records = Record.objects.bulk_create(
        [
            Record(tenant=integration.tenant, kind="contact", payload={"email": f"p{i}@example.com"})
            for i in range(n)
        ]
    )
    now = timezone.now()
    RecordLink.objects.bulk_create(
        [
            RecordLink(record=r, integration=integration, failed_at=now, last_error_category="provider_5xx")
            for r in records
        ]
    )
    SyncLog.objects.bulk_create(
        [
            SyncLog(
                integration=integration,
                tenant=integration.tenant,
                provider=integration.provider,
                direction="push",
                object_type="contacts",
                record=r,
                operation="create",
                status="FAILED",
                error_category="provider_5xx",
            )
            for r in records
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retries_queue_each_failed_log_exactly_once(postgres, monkeypatch):
    # Small chunks, so the two callers interleave many times over the same rows.
    monkeypatch.setattr(recovery, "CHUNK", 50)
    integration = factories.integration(
        provider="hubspot"
    )  # no credentials: the enqueued syncs return at once
    _failed_logs(integration, N)

    start = threading.Barrier(2)
    results: dict[str, int] = {}
    failures: list[BaseException] = []

    def operator(name: str) -> None:
        try:
            start.wait(timeout=10)
            result = services.sync_logs_retry_failed(
                logs=SyncLog.objects.filter(provider="hubspot"), actor=System(name)
            )
            results[name] = result.changed
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=operator, args=(name,)) for name in ("op-a", "op-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not failures, failures
    assert sum(results.values()) == N, results
    # Each failed attempt keeps its outcome and has exactly one retry (one attempt, one row).
    assert SyncLog.objects.filter(status="PENDING").count() == N
    assert SyncLog.objects.filter(status="PENDING").values("retry_of").distinct().count() == N
    assert SyncLog.objects.filter(status="FAILED").count() == N
    assert not RecordLink.objects.filter(failed_at__isnull=False).exists()
    audited = {
        name: sum(
            e.details["changed"]
            for e in AuditEvent.objects.filter(action="sync_logs.retry_failed", actor=f"system:{name}")
        )
        for name in results
    }
    assert audited == results  # each caller's audit rows say exactly what it queued
