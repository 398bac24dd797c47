"""Indexes for "Retry failed" on a big sync log: the FAILED pushes (all, and by error type), and the retries
(where retry_of is set).

On PostgreSQL the indexes are built CONCURRENTLY, so that a deploy does not hold writes to the sync log while
they are built (about 2 s per 10 million rows here); the full retry_of index they replace is dropped last
(concurrently too), without touching the foreign key itself.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            concurrently = AddIndexConcurrently(self.model_name, self.index)
            return concurrently.database_forwards(app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            concurrently = AddIndexConcurrently(self.model_name, self.index)
            return concurrently.database_backwards(app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


def _full_retry_of_indexes(schema_editor, model) -> list[str]:
    """The plain (non-unique, non-partial) indexes on retry_of_id alone: Django's foreign-key index."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, c in constraints.items()
        if c["index"] and not c["unique"] and c["columns"] == ["retry_of_id"] and name != "synclog_retry_of"
    ]


def drop_full_retry_of_index(apps, schema_editor):
    model = apps.get_model("integrations", "SyncLog")
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name in _full_retry_of_indexes(schema_editor, model):
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(name)}")


def add_full_retry_of_index(apps, schema_editor):
    model = apps.get_model("integrations", "SyncLog")
    if not _full_retry_of_indexes(schema_editor, model):
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        schema_editor.execute(
            f"CREATE INDEX {concurrently}integrations_synclog_retry_of_id_6f98de45 "
            f"ON {schema_editor.quote_name(model._meta.db_table)} (retry_of_id)"
        )


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("integrations", "0009_issue13_security"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="synclog",
            index=models.Index(
                condition=models.Q(("retry_of__isnull", False)), fields=["retry_of"], name="synclog_retry_of"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="synclog",
            index=models.Index(
                condition=models.Q(("direction", "push"), ("record__isnull", False), ("status", "FAILED")),
                fields=["id"],
                name="synclog_failed_push",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="synclog",
            index=models.Index(
                condition=models.Q(("direction", "push"), ("record__isnull", False), ("status", "FAILED")),
                fields=["error_category", "id"],
                name="synclog_failed_push_category",
            ),
        ),
        # The full retry_of index goes, and only it: an AlterField of a foreign key's db_index would drop and
        # re-add the foreign key on PostgreSQL (a check of every row under a lock that holds writes), and rebuild
        # the table on SQLite. The state says db_index=False; the database drops the old index by itself.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="synclog",
                    name="retry_of",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="retries",
                        to="integrations.synclog",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_full_retry_of_index, add_full_retry_of_index)],
        ),
    ]
