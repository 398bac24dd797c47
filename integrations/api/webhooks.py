"""Inbound provider webhooks: verify the signature, store each event once, process it in the background."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import services
from integrations.catalog import PROVIDERS
from integrations.models import Integration
from integrations.providers import ProviderError, get_client_class

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt
@require_POST
def receive(request, provider: str, tenant_slug: str):
    """POST /webhooks/{provider}/{tenant}/: 401 for a bad or stale signature, 200 once stored."""
    if provider not in PROVIDERS:
        return _error(404, "not_found", f"Unknown provider '{provider}'.")
    client_class = get_client_class(provider)
    if not client_class.supports_webhooks:
        return _error(404, "not_found", f"{PROVIDERS[provider].name} does not send webhooks; it is polled.")
    integration = Integration.objects.filter(provider=provider, tenant__slug=tenant_slug).first()
    if integration is None:
        return _error(404, "not_found", f"No {provider} integration for tenant '{tenant_slug}'.")
    body = request.body
    headers = {k: v for k, v in request.headers.items()}
    url = request.build_absolute_uri()
    if not client_class.verify_webhook(
        secret=settings.PROVIDER_WEBHOOK_SECRET, method="POST", url=url, headers=headers, body=body
    ):
        log.warning("webhook refused: bad signature provider=%s tenant=%s", provider, tenant_slug)
        return _error(401, "bad_signature", "The webhook signature is missing, wrong or stale.")
    try:
        events = client_class.parse_webhook(headers=headers, body=body)
    except ProviderError as e:
        return _error(400, "malformed", e.message)
    stored, duplicates = services.webhook_events_store(integration=integration, events=events)
    return JsonResponse({"received": stored, "duplicates": duplicates})
