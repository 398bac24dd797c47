"""Inbound provider webhooks: verify the signature, store each event once, process it in the background.

Issue 13: each integration has its own secret (Integration.webhook_secret); the body is size-capped and its JSON
depth capped before anything parses it (413 / 400, never 500); an inactive tenant's webhooks are refused.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import services
from integrations.catalog import PROVIDERS
from integrations.models import Integration
from integrations.providers import ProviderError, get_client_class
from integrations.providers.jsonlimits import MAX_JSON_DEPTH, nesting_depth

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _too_big(request) -> bool:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    return declared > settings.WEBHOOK_MAX_BODY_BYTES


@csrf_exempt
@require_POST
def receive(request, provider: str, tenant_slug: str):
    """POST /webhooks/{provider}/{tenant}/: 401 for a bad or stale signature, 200 once stored."""
    if provider not in PROVIDERS:
        return _error(404, "not_found", f"Unknown provider '{provider}'.")
    client_class = get_client_class(provider)
    if not client_class.supports_webhooks:
        return _error(404, "not_found", f"{PROVIDERS[provider].name} does not send webhooks; it is polled.")
    integration = (
        Integration.objects.select_related("tenant")
        .filter(provider=provider, tenant__slug=tenant_slug)
        .first()
    )
    if integration is None:
        return _error(404, "not_found", f"No {provider} integration for tenant '{tenant_slug}'.")
    if not integration.tenant.is_active:
        return _error(
            403, "tenant_inactive", f"Tenant '{tenant_slug}' is inactive; its webhooks are refused."
        )
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if _too_big(request):
        return _error(413, "too_large", f"The body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "too_large", f"The body is larger than {limit} bytes.")
    if len(body) > limit:
        return _error(413, "too_large", f"The body is larger than {limit} bytes.")
    if nesting_depth(body, stop_at=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return _error(400, "malformed", f"The body is JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    headers = {k: v for k, v in request.headers.items()}
    url = request.build_absolute_uri()
    secret = integration.webhook_secret_value
    if not secret or not client_class.verify_webhook(
        secret=secret, method="POST", url=url, headers=headers, body=body
    ):
        log.warning("webhook refused: bad signature provider=%s tenant=%s", provider, tenant_slug)
        return _error(401, "bad_signature", "The webhook signature is missing, wrong or stale.")
    try:
        events = client_class.parse_webhook(headers=headers, body=body)
    except ProviderError as e:
        return _error(400, "malformed", e.message)
    stored, duplicates = services.webhook_events_store(integration=integration, events=events)
    return JsonResponse({"received": stored, "duplicates": duplicates})
