"""Issue 13 (M6): every admin add, change and delete, for every model, writes an AuditEvent with its actor and
the old and new values (inlines included). Secret columns are never written, only that they changed."""

import datetime
import decimal
import uuid
from typing import Any

from django.db import models

from integrations.access.actors import Actor
from integrations.access.crypto import EncryptedJSONField
from integrations.models import AuditAction, Integration, Tenant
from integrations.services.common import audit

SECRET_NAMES = (
    "password",
    "token_hash",
    "credentials",
    "webhook_secret",
    "secret",
    "session_data",
    "api_key",
)
REDACTED = "[redacted]"
MAX_VALUE_CHARS = 2000


def is_secret_field(model, name: str) -> bool:
    try:
        field = model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - a form field that is no model field
        field = None
    if isinstance(field, EncryptedJSONField):
        return True
    return any(part in name.lower() for part in SECRET_NAMES)


def plain(value: Any) -> Any:
    """A JSON-safe rendering of a form or model value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) else value[:MAX_VALUE_CHARS]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, models.Model):
        return {"pk": value.pk, "repr": str(value)[:200]}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "__iter__"):
        try:
            return [plain(v) for v in list(value)[:100]]
        except TypeError:
            pass
    return str(value)[:MAX_VALUE_CHARS]


def form_changes(form) -> dict:
    """{field: {"old": ..., "new": ...}} of a bound, valid model form."""
    model = form._meta.model
    out = {}
    for name in form.changed_data:
        if is_secret_field(model, name):
            out[name] = {"old": REDACTED, "new": REDACTED}
            continue
        old = form.initial.get(name)
        new = form.cleaned_data.get(name)
        out[name] = {"old": plain(old), "new": plain(new)}
    return out


def formset_changes(formsets) -> list[dict]:
    """What each inline formset added, changed (old/new) and deleted."""
    out = []
    for formset in formsets or []:
        model = formset.model
        entry: dict = {"model": model._meta.label, "added": [], "changed": [], "deleted": []}
        for form in formset.forms:
            if not getattr(form, "cleaned_data", None) or not form.has_changed():
                continue
            instance = form.instance
            if formset.can_delete and formset._should_delete_form(form):
                entry["deleted"].append({"pk": instance.pk, "values": snapshot(instance)})
            elif instance.pk is not None and form.initial:
                entry["changed"].append({"pk": instance.pk, "changes": form_changes(form)})
            else:
                entry["added"].append({"pk": instance.pk, "values": form_changes(form)})
        if entry["added"] or entry["changed"] or entry["deleted"]:
            out.append(entry)
    return out


def snapshot(obj: models.Model) -> dict:
    """The object's concrete field values (secrets redacted)."""
    values = {}
    for field in obj._meta.concrete_fields:
        name = field.attname
        values[name] = REDACTED if is_secret_field(type(obj), field.name) else plain(getattr(obj, name, None))
    return values


def _scope(obj) -> dict:
    if isinstance(obj, Integration):
        return {"integration": obj}
    if isinstance(obj, Tenant):
        return {"tenant": obj}
    integration_id = getattr(obj, "integration_id", None)
    if integration_id and Integration.objects.filter(pk=integration_id).exists():
        return {"integration": Integration.objects.select_related("tenant").get(pk=integration_id)}
    tenant_id = getattr(obj, "tenant_id", None)
    if tenant_id:
        return {"tenant": Tenant.objects.filter(pk=tenant_id).first()}
    return {}


def admin_write_record(*, actor: Actor, action: str, obj: models.Model, details: dict) -> None:
    """One AuditEvent for an admin add/change/delete of any model."""
    scope = _scope(obj)
    audit(
        actor=actor,
        action=action,
        details={"model": obj._meta.label, "pk": plain(obj.pk), "repr": str(obj)[:200], **details},
        **scope,
    )


ADD, CHANGE, DELETE = AuditAction.ADMIN_ADD, AuditAction.ADMIN_CHANGE, AuditAction.ADMIN_DELETE
