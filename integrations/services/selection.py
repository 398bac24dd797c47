"""A selection stored as data (issue 13, item 10): BulkOperation.params held a pickled Django Query, which is
code execution for anyone who can write the table and breaks across Django upgrades.

`to_data(queryset)` keeps the selection's filters as plain JSON (field, lookup, value, combined with AND/OR/NOT)
when they are simple lookups on the model's own columns, else its ids; `from_data(model, data)` rebuilds the
queryset from that data with Q objects. Nothing is ever unpickled.
"""

import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup
from django.db.models.sql.where import WhereNode
from django.utils.dateparse import parse_date, parse_datetime

from integrations.errors import ServiceError

MAX_IDS = 1_000_000
LOOKUPS = frozenset(
    {"exact", "iexact", "in", "gt", "gte", "lt", "lte", "isnull", "range", "contains", "icontains"}
)


class Unsupported(Exception):
    pass


def _value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {"list": [_value(v) for v in value]}
    raise Unsupported(type(value).__name__)


def _unvalue(value):
    if isinstance(value, dict):
        if "datetime" in value:
            return parse_datetime(value["datetime"])
        if "date" in value:
            return parse_date(value["date"])
        if "decimal" in value:
            return Decimal(value["decimal"])
        if "list" in value:
            return [_unvalue(v) for v in value["list"]]
        raise ServiceError("The stored selection holds a value of an unknown kind.")
    return value


def _node(node, table: str):
    if isinstance(node, WhereNode):
        return {
            "op": node.connector,
            "not": bool(node.negated),
            "of": [_node(c, table) for c in node.children],
        }
    if (
        isinstance(node, Lookup)
        and isinstance(node.lhs, Col)
        and node.lhs.alias == table
        and node.lookup_name in LOOKUPS
        and not hasattr(node.rhs, "resolve_expression")
    ):
        return {"field": node.lhs.target.name, "lookup": node.lookup_name, "value": _value(node.rhs)}
    raise Unsupported(type(node).__name__)


def to_data(queryset: QuerySet) -> dict:
    """The selection as JSON-safe data: {"where": ...} for simple filters, else {"ids": [...]}."""
    try:
        return {"where": _node(queryset.query.where, queryset.model._meta.db_table)}
    except Unsupported:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_IDS + 1])
        if len(ids) > MAX_IDS:
            raise ServiceError("The selection is too large to store by id; narrow the filters.") from None
        return {"ids": ids}


def _q(data) -> Q:
    if "field" in data:
        field, lookup = str(data["field"]), str(data["lookup"])
        if lookup not in LOOKUPS or "__" in field:
            raise ServiceError("The stored selection holds a lookup that is not allowed.")
        return Q(**{f"{field}__{lookup}": _unvalue(data["value"])})
    q = Q()
    for child in data.get("of") or []:
        q = q | _q(child) if data.get("op") == "OR" else q & _q(child)
    return ~q if data.get("not") else q


def from_data(model, data: dict) -> QuerySet:
    if not isinstance(data, dict):
        raise ServiceError("The stored selection is not data this version understands.")
    if "ids" in data:
        return model.objects.filter(pk__in=[int(i) for i in data["ids"]])
    if "where" in data:
        return model.objects.filter(_q(data["where"]))
    raise ServiceError("The stored selection is not data this version understands.")
