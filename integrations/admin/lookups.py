"""Issue 13 (M1, M6): changelist lookups are limited to what a screen declares; every admin write is audited.

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
    # The console's screens link to rows of one tenant, integration, record or incident by id (never an oracle).
    fields.update(("tenant__id", "integration__id", "record__id", "incident__id", "affected_tenants__id"))
    fields.update(("id", "pk", "created_at", "received_at", "updated_at"))  # the screens' time windows
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


class SafeActionSelection:
    """ModelAdmin mixin (issue 13, L9): a non-numeric `_selected_action` is a message, not a 500."""

    def response_action(self, request, queryset):
        from django.contrib import messages
        from django.contrib.admin import helpers
        from django.http import HttpResponseRedirect

        pk = self.model._meta.pk
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        try:
            for value in selected:
                pk.to_python(value)
                pk.get_prep_value(pk.to_python(value))
        except Exception:  # noqa: BLE001 - ValidationError, ValueError, OverflowError: all the same to the user
            self.message_user(
                request, "The selection holds an id that is not one of these rows.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        if pk.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField") and any(
            abs(int(v)) > 2**63 - 1 for v in selected
        ):
            self.message_user(
                request, "The selection holds an id that is not one of these rows.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class AuditedAdmin:
    """ModelAdmin mixin (issue 13, M6): every add, change (old and new values, inlines included) and delete
    writes an AuditEvent with the user who did it. Django's own LogEntry is kept as well."""

    def construct_change_message(self, request, form, formsets, add=False):
        from integrations.services import admin_audit

        request.lineup_admin_changes = {
            "changes": admin_audit.form_changes(form) if form is not None else {},
            "inlines": admin_audit.formset_changes(formsets),
        }
        return super().construct_change_message(request, form, formsets, add)

    def _lineup_record(self, request, obj, action):
        from integrations import services

        details = getattr(request, "lineup_admin_changes", None) or {"changes": {}, "inlines": []}
        request.lineup_admin_changes = None
        services.admin_write_record(actor=request.user, action=action, obj=obj, details=details)

    def log_addition(self, request, obj, message):
        from integrations.services import admin_audit

        self._lineup_record(request, obj, admin_audit.ADD)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        from integrations.services import admin_audit

        self._lineup_record(request, obj, admin_audit.CHANGE)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        from integrations import services
        from integrations.services import admin_audit

        for obj in queryset:
            services.admin_write_record(
                actor=request.user,
                action=admin_audit.DELETE,
                obj=obj,
                details={"values": admin_audit.snapshot(obj)},
            )
        return super().log_deletions(request, queryset)


def protect_every_admin(site=None) -> None:
    """Give every registered ModelAdmin (django.contrib's and django_celery_beat's too) both rules: declared
    lookups only, and an audited add/change/delete."""
    site = site or admin.site
    for model_admin in site._registry.values():
        cls = type(model_admin)
        bases = tuple(
            m
            for m in (AuditedAdmin, SafeActionSelection, DeclaredLookupsOnly)
            if not isinstance(model_admin, m)
        )
        if bases:
            model_admin.__class__ = type(cls.__name__, (*bases, cls), {"__module__": cls.__module__})
