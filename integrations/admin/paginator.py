"""A paginator for tables of millions of rows: estimated counts, never a full COUNT(*)."""

import re

from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Never runs a full COUNT on a big table.

    Unfiltered lists on PostgreSQL use the planner's row estimate (pg_class.reltuples). Filtered lists use
    EXPLAIN's estimate when it is large; small ones are counted for real, under a short statement timeout.
    """

    count_timeout_ms = 300
    exact_below = 10000

    @cached_property
    def count(self):
        qs = self.object_list
        connection = connections[qs.db]
        if connection.vendor != "postgresql":
            return super().count
        if not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            estimate = int(row[0]) if row else -1
            if estimate >= 0:
                # reltuples is -1 (never analysed) or stale on small tables: count those for real.
                return estimate if estimate > self.exact_below else super().count
        else:
            estimate = self._explain_estimate(qs)
            if estimate > self.exact_below:
                return estimate  # "about N": an exact count of a million rows costs more than the page itself
        try:
            with transaction.atomic(using=qs.db), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout')")
                previous = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [f"{self.count_timeout_ms}ms"]
                )
                count = qs.count()
                # SET LOCAL lasts to the end of the enclosing transaction, not the savepoint: put it back.
                # (A timeout rolls back to the savepoint, which restores it by itself.)
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
                return count
        except DatabaseError:
            return self._explain_estimate(qs)

    @staticmethod
    def _explain_estimate(qs) -> int:
        plan = qs.order_by().explain()
        match = re.search(r"rows=(\d+)", plan)
        return int(match.group(1)) if match else 0
