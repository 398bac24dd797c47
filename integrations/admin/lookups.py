"""Issue 13 (M1): changelist lookups are limited to what a screen declares.

Django allows any lookup on a model's own fields (`?credentials__regex=^gAAAAA`), which made the changelist an
oracle for ciphertext and token hashes. `DeclaredLookupsOnly.lookup_allowed` allows only the parameters of the
declared `list_filter` entries (and `date_hierarchy`), with plain comparison suffixes, and never a lookup that
touches a secret column, for any role; anything else answers 400 (DisallowedModelAdminLookup).
`protect_every_admin` gives the same rule to the admins other apps register (users, groups, periodic tasks).
"""

from django.contrib import admin

# Columns no lookup may touch, whatever the screen declares.
SECRET_PARTS = frozenset(
    {"credentials", "webhook_secret", "token_hash", "password", "session_key", "session_data", "api_key"}
)
# Suffixes a declared filter produces (exact match, choices, ranges, null checks, date parts).
SAFE_SUFFIXES = frozenset(
    {"exact", "iexact", "in", "isnull", "gte", "lte", "gt", "lt", "range", "year", "month", "day", "id", "pk"}
)


def _declared(model_admin, request) -> tuple[set[str], set[str]]:
    """(field paths whose comparisons are allowed, exact parameter names allowed)."""
    fields: set[str] = set()
    params: set[str] = set()
    for item in model_admin.get_list_filter(request) if request is not None else model_admin.list_filter:
        if isinstance(item, str):
            fields.add(item)
        elif isinstance(item, (tuple, list)) and item:
            fields.add(str(item[0]))
        elif isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            params.add(item.parameter_name)
    if model_admin.date_hierarchy:
        fields.add(model_admin.date_hierarchy)
    # Field paths the console's own links filter on without a sidebar filter (dashboard/links.py).
    fields.update(getattr(model_admin, "link_lookups", ()))
    return fields, params


def lookup_is_declared(model_admin, lookup: str, request=None) -> bool:
    parts = str(lookup).split("__")
    if any(part in SECRET_PARTS for part in parts):
        return False
    fields, params = _declared(model_admin, request)
    if lookup in params:
        return True
    for field in fields:
        if lookup == field:
            return True
        if lookup.startswith(field + "__"):
            rest = lookup[len(field) + 2 :].split("__")
            if all(part in SAFE_SUFFIXES for part in rest):
                return True
    return False


class DeclaredLookupsOnly:
    """ModelAdmin mixin: only declared filter lookups, never one on a secret column."""

    def lookup_allowed(self, lookup, value, request=None):
        return lookup_is_declared(self, lookup, request)


def protect_every_admin(site=None) -> None:
    """Give every registered ModelAdmin the rule (the ones of django.contrib and django_celery_beat too)."""
    site = site or admin.site
    for model_admin in site._registry.values():
        cls = type(model_admin)
        if not isinstance(model_admin, DeclaredLookupsOnly):
            model_admin.__class__ = type(
                cls.__name__, (DeclaredLookupsOnly, cls), {"__module__": cls.__module__}
            )
