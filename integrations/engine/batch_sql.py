"""Writing a batch's rows in one statement each, whatever the batch's size (sync-log rows, record links).

On PostgreSQL the rows travel as one JSON parameter, unpacked by `jsonb_to_recordset`. Django's own bulk
writes cost more per row than the provider call they record: `bulk_create` sends each column as an array
(INSERT ... SELECT * FROM UNNEST), and psycopg quotes every array element in Python, escaping each double quote
of the request and response excerpts (JSON), about 2.5 ms per sync-log row; `bulk_update` builds a CASE per
column and row. Elsewhere (SQLite) Django's bulk_create and bulk_update are used as they are.
"""

import json
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.db import connection, models


def insert_rows(objs: list[models.Model]) -> None:
    """INSERT the (unsaved) objects in one statement and give them their primary keys, like bulk_create."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql" or len(objs) == 1:
        model.objects.bulk_create(objs)
        return
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    data = [{f.column: _json_value(f, f.pre_save(obj, True)) for f in fields} for obj in objs]
    with connection.cursor() as cursor:
        # RETURNING gives the rows in the order of the recordset, as Django's own bulk_create relies on.
        cursor.execute(
            f"INSERT INTO {qn(opts.db_table)} ({columns}) SELECT {columns} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS x({_column_types(fields)}) RETURNING {qn(opts.pk.column)}",
            [json.dumps(data)],
        )
        pks = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias


def update_rows(objs: list[models.Model], field_names: list[str]) -> None:
    """UPDATE the given fields of the (saved) objects in one statement, like bulk_update."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, field_names)
        return
    opts = model._meta
    fields = [opts.get_field(name) for name in field_names]
    qn = connection.ops.quote_name
    pk = opts.pk
    data = [
        {pk.column: obj.pk, **{f.column: _json_value(f, getattr(obj, f.attname)) for f in fields}}
        for obj in objs
    ]
    assignments = ", ".join(f"{qn(f.column)} = x.{qn(f.column)}" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(opts.db_table)} AS t SET {assignments} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS x({_column_types([pk, *fields])}) "
            f"WHERE t.{qn(pk.column)} = x.{qn(pk.column)}",
            [json.dumps(data)],
        )


def _column_types(fields) -> str:
    # The column's type without its parameters (varchar, not varchar(300)), as Django's UNNEST insert does.
    qn = connection.ops.quote_name
    return ", ".join(f"{qn(f.column)} {f.db_type(connection).split('(')[0]}" for f in fields)


def _json_value(field: models.Field, value):
    if value is None or isinstance(value, str | int):
        return (
            value  # as Django would send it: its fields prepare these as they are (str subclasses: choices)
        )
    if hasattr(value, "resolve_expression"):
        raise TypeError(f"{field} holds an expression, which this writer does not carry")
    if isinstance(field, models.JSONField):
        return value  # nested as JSON, read back as the jsonb column
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    value = field.get_db_prep_save(value, connection)  # naive datetimes, dates, decimals, UUIDs...
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        raise TypeError(f"{field} holds binary data, which this writer does not carry")
    return value
