"""bench/data.py writes its rows with raw INSERT ... SELECT, so a migration that adds a NOT NULL column breaks
`make bench` without any other test noticing (issue 14's 10M detection figure was blocked by exactly that). Every
INSERT there must give each column the database itself cannot fill."""

import re
from pathlib import Path

from django.apps import apps
from django.db import models
from django.db.models.fields import NOT_PROVIDED

SOURCE = Path(__file__).resolve().parents[1] / "bench" / "data.py"
INSERT = re.compile(r"INSERT INTO (\w+) \((.*?)\)\s*SELECT", re.S)


def _required_columns(table: str) -> set[str]:
    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    return {
        f.column
        for f in model._meta.concrete_fields
        if not f.null and f.db_default is NOT_PROVIDED and not isinstance(f, models.AutoField)
    }


def test_every_bench_insert_fills_every_not_null_column():
    inserts = INSERT.findall(SOURCE.read_text())
    assert len(inserts) >= 5, "bench/data.py's INSERT statements were not found"
    missing = {}
    for table, columns in inserts:
        given = {c.strip() for c in columns.split(",")}
        if lacking := _required_columns(table) - given:
            missing[table] = sorted(lacking)
    assert not missing, missing
