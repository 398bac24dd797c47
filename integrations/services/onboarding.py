"""Onboarding: the shapes the catalog allows, and connecting a new tenant's integration (connect_integration).

`validate_integration_shape` is what the admin's add form must call from its clean() (a HubSpot integration
saved as "Docs / API key" was accepted and shown as Connected with no credentials). `integration_connect`
creates the tenant and the integration and then hands the credentials to the credential services, which test
them against the provider before anything is kept.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from integrations import errors
from integrations.access.actors import MANAGE_CREDENTIALS, Actor, require
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction, AuthType, Integration, IntegrationStatus, SyncMode, Tenant
from integrations.services import credentials
from integrations.services.common import audit
from integrations.services.syncs import enqueue_syncs

UNKNOWN_PROVIDER = "Unknown provider '{provider}' (known: {known})."
WRONG_CATEGORY = "{name} is a {expected} provider, not {given}."
WRONG_AUTH_TYPE = "{name} connects with {expected}, not {given}."
NO_WEBHOOKS = "{name} sends no webhooks: use polling mode."
ALREADY_CONNECTED = (
    "Tenant '{tenant}' already has a {name} integration: use Reconnect or Update API key on it."
)
_AUTH_LABEL = {AuthType.OAUTH2: "OAuth", AuthType.API_KEY: "an API key"}


def validate_integration_shape(
    provider: str, category: str | None, auth_type: str | None, mode: str | None = None
) -> None:
    """Refuse a (provider, category, auth type, mode) the catalog does not allow; ValidationError by field.

    Meant for a ModelForm's clean(): `validate_integration_shape(d.get("provider"), d.get("category"),
    d.get("auth_type"), d.get("mode"))`; a ValidationError with a dict attaches each message to its field.
    """
    info = PROVIDERS.get(provider or "")
    if info is None:
        raise ValidationError(
            {"provider": UNKNOWN_PROVIDER.format(provider=provider, known=", ".join(PROVIDERS))}
        )
    problems = {}
    if category and category != info.category:
        problems["category"] = WRONG_CATEGORY.format(name=info.name, expected=info.category, given=category)
    if auth_type and auth_type != info.auth_type:
        problems["auth_type"] = WRONG_AUTH_TYPE.format(
            name=info.name,
            expected=_AUTH_LABEL.get(info.auth_type, info.auth_type),
            given=_AUTH_LABEL.get(auth_type, auth_type),
        )
    if mode == SyncMode.WEBHOOK and not info.supports_webhooks:
        problems["mode"] = NO_WEBHOOKS.format(name=info.name)
    if problems:
        raise ValidationError(problems)


@dataclass
class Connected:
    integration: Integration
    created_tenant: bool
    outcome: str
    message: str


def integration_connect(
    *,
    tenant_slug: str,
    tenant_name: str = "",
    provider: str,
    base_url: str,
    actor: Actor,
    api_key: str = "",
    refresh_token: str = "",
    mode: str | None = None,
    is_critical: bool = False,
    source: str = "connect_integration",
) -> Connected:
    """Create a tenant's integration and connect it: an API key or an OAuth refresh token, tested first.

    A key or a token the provider refuses leaves nothing behind (no tenant, no integration created), and the
    ServiceError says why. The first sync is queued once the credentials work.
    """
    require(actor, MANAGE_CREDENTIALS)
    try:
        validate_integration_shape(provider, None, None, mode)
    except ValidationError as e:
        raise errors.ServiceError(
            " ".join(m for ms in e.message_dict.values() for m in ms), field="provider"
        ) from None
    info = PROVIDERS[provider]
    if info.auth_type == AuthType.API_KEY and not api_key:
        raise errors.ServiceError(f"{info.name} connects with an API key: give one.", field="api_key")
    if info.auth_type == AuthType.OAUTH2 and not refresh_token:
        raise errors.ServiceError(
            f"{info.name} connects with OAuth: give a refresh token (or use the admin's "
            "Re-authorize button for the consent page).",
            field="refresh_token",
        )
    with transaction.atomic():
        tenant, created_tenant = Tenant.objects.get_or_create(
            slug=tenant_slug, defaults={"name": tenant_name or tenant_slug}
        )
        if Integration.objects.filter(tenant=tenant, provider=provider).exists():
            raise errors.Conflict(ALREADY_CONNECTED.format(tenant=tenant_slug, name=info.name))
        integration = Integration.objects.create(
            tenant=tenant,
            provider=provider,
            category=info.category,
            auth_type=info.auth_type,
            base_url=base_url,
            mode=mode or (SyncMode.WEBHOOK if info.supports_webhooks else SyncMode.POLLING),
            is_critical=is_critical,
            # Not connected until the provider accepted the credentials below.
            status=IntegrationStatus.NEEDS_REAUTH,
            credentials={"refresh_token": refresh_token} if refresh_token else {},
        )
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_CREATE,
            integration=integration,
            details={"source": source, "created_tenant": created_tenant},
        )
    try:
        if info.auth_type == AuthType.API_KEY:
            result = credentials.integration_update_api_key(
                integration=integration, actor=actor, api_key=api_key, source=source
            )
        else:
            result = credentials.integration_reconnect(integration=integration, actor=actor, source=source)
            if result.details["outcome"] not in (credentials.CONNECTED, credentials.REFRESHED):
                raise errors.ServiceError(result.details["message"], field="refresh_token")
    except errors.ServiceError:
        _undo(integration, tenant if created_tenant else None)
        raise
    integration.refresh_from_db()
    with transaction.atomic():
        enqueue_syncs([integration.pk])
    return Connected(
        integration=integration,
        created_tenant=created_tenant,
        outcome=result.details.get("outcome", "connected"),
        message=result.details.get("message", credentials.MSG_CONNECTED),
    )


def _undo(integration: Integration, tenant: Tenant | None) -> None:
    # The audit rows of the refused attempt stay (their integration becomes null): they say what was tried.
    with transaction.atomic():
        integration.delete()
        if tenant is not None:
            tenant.delete()


def webhook_url(console_url: str, integration: Integration) -> str:
    """Where the provider must send this integration's webhooks."""
    return f"{console_url.rstrip('/')}/webhooks/{integration.provider}/{integration.tenant.slug}/"
