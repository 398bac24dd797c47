"""POST /api/v1/alerts: Alertmanager's webhook receiver (admin tokens only)."""

import json

from django.http import JsonResponse

from incidents.detection.alertmanager import PayloadError, intake
from integrations.api.base import ApiError, api_view


@api_view("POST", admin_only=True)
def alertmanager(request, token):
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {e}") from None
    try:
        result = intake(payload=payload, actor=token)
    except PayloadError as e:
        raise ApiError(400, "invalid_payload", e.message, field=e.field) from None
    return JsonResponse(
        {
            "opened": result.opened,
            "updated": result.updated,
            "resolved_noted": result.resolved_noted,
            "ignored": result.ignored,
        }
    )
