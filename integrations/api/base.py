"""API plumbing: bearer-token authentication, JSON bodies, and one error shape for every failure."""

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from integrations.errors import Conflict, ServiceError
from integrations.models import ApiToken, ApiTokenScope
from integrations.providers.jsonlimits import JsonRefused, loads_limited

log = logging.getLogger(__name__)
LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(status: int, code: str, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field
    return JsonResponse(body, status=status)


def authenticate(request) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(401, "unauthenticated", "Send 'Authorization: Bearer <token>'.")
    token = ApiToken.objects.select_related("tenant").filter(token_hash=ApiToken.hash(raw.strip())).first()
    if token is None or token.revoked_at is not None:
        raise ApiError(401, "invalid_token", "The token is unknown or revoked.")
    if token.tenant_id is not None and not token.tenant.is_active:
        raise ApiError(403, "tenant_inactive", "The token's tenant is inactive.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_view(*methods: str, admin_only: bool = False):
    """Wrap a view(request, token, **kwargs): auth, method check, and every error as JSON (never a 500 for bad input)."""

    def decorator(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError(405, "method_not_allowed", f"Use {' or '.join(methods)} here.")
                token = authenticate(request)
                if admin_only and token.scope != ApiTokenScope.ADMIN:
                    raise ApiError(403, "forbidden", "This path needs an admin token.")
                return view(request, token, *args, **kwargs)
            except ApiError as e:
                return error_response(e.status, e.code, e.message, e.field)
            except Conflict as e:
                return error_response(409, e.code, e.message, e.field)
            except ServiceError as e:
                status = 404 if e.code == "not_found" else 400
                return error_response(status, e.code, e.message, e.field)
            except PermissionDenied as e:
                return error_response(403, "forbidden", str(e) or "Not allowed.")

        return wrapper

    return decorator


def json_document(body: bytes):
    """Any JSON document, its size and depth checked before parsing (issue 13: RecursionError was a 500)."""
    if len(body or b"") > settings.API_MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"The body is larger than {settings.API_MAX_BODY_BYTES} bytes.")
    try:
        return loads_limited(body or b"")
    except JsonRefused as e:
        raise ApiError(400, "malformed_json", f"The body is {e.message}.") from None


def json_body(request) -> dict:
    """The request's JSON object; 400 naming the problem otherwise."""
    if not request.body:
        return {}
    data = json_document(request.body)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object.")
    return data


def expect(data: dict, field: str, kind: type | tuple, *, required: bool = False):
    """A field of the body, type-checked (bool is not an int here)."""
    if field not in data:
        if required:
            raise ApiError(400, "missing_field", f"'{field}' is required.", field=field)
        return None
    value = data[field]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (bool not in kinds and isinstance(value, bool)) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ApiError(400, "invalid_type", f"'{field}' must be {names}.", field=field)
    return value
