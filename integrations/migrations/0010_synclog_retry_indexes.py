"""Indexes for "Retry failed" on a big sync log: the FAILED pushes (all, and by error type), and the retries
(where retry_of is set).

On PostgreSQL the indexes are built CONCURRENTLY, so that a deploy does not hold writes to the sync log while
they are built (about 2 s per 10 million rows here); the full retry_of index they replace is dropped last.
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
    ]
