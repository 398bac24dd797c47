"""POST /api/v1/alerts: Alertmanager's webhook receiver (admin tokens only). A notification that mixes known
and unknown alerts answers 200 and names the ignored ones; only a body that is not Alertmanager's is a 400."""

from django.http import JsonResponse

from incidents.detection.alertmanager import PayloadError, intake
from integrations.api.base import ApiError, api_view, json_document


@api_view("POST", admin_only=True)
def alertmanager(request, token):
    payload = json_document(request.body)  # size and depth checked before parsing (issue 13)
    try:
        result = intake(payload=payload, actor=token)
    except PayloadError as e:
        raise ApiError(400, "invalid_payload", e.message, field=e.field) from None
    return JsonResponse(result.as_json())
