"""Provider clients: one adapter per provider on one base HTTP client. No Django, no ORM in here."""

from __future__ import annotations

from typing import Any

from integrations.providers.base import BaseClient, parse_retry_after, shared_session
from integrations.providers.clearbit import ClearbitClient
from integrations.providers.errors import (
    CATEGORIES,
    TRANSIENT_CATEGORIES,
    ProviderError,
    UnsupportedOperation,
)
from integrations.providers.greenhouse import GreenhouseClient
from integrations.providers.hubspot import HubSpotClient
from integrations.providers.lever import LeverClient
from integrations.providers.pandadoc import PandaDocClient
from integrations.providers.salesforce import SalesforceClient
from integrations.providers.types import CallInfo, Page, ProviderStatus, RemoteRecord, TokenSet, WebhookEvent
from integrations.providers.workday import WorkdayClient

CLIENTS: dict[str, type[BaseClient]] = {
    cls.provider: cls
    for cls in (
        HubSpotClient,
        SalesforceClient,
        GreenhouseClient,
        LeverClient,
        WorkdayClient,
        PandaDocClient,
        ClearbitClient,
    )
}


class UnknownProvider(KeyError, ValueError):
    """No client for that provider slug."""


def get_client_class(provider: str) -> type[BaseClient]:
    try:
        return CLIENTS[provider]
    except (KeyError, TypeError):
        raise UnknownProvider(f"no client for provider {provider!r}") from None


def get_client(provider: str, **kwargs: Any) -> BaseClient:
    """A client for a provider slug (see integrations.catalog); UnknownProvider (a KeyError and ValueError) otherwise."""
    return get_client_class(provider)(**kwargs)


__all__ = [
    "CATEGORIES",
    "CLIENTS",
    "TRANSIENT_CATEGORIES",
    "BaseClient",
    "CallInfo",
    "ClearbitClient",
    "GreenhouseClient",
    "HubSpotClient",
    "LeverClient",
    "Page",
    "PandaDocClient",
    "ProviderError",
    "ProviderStatus",
    "RemoteRecord",
    "SalesforceClient",
    "TokenSet",
    "UnknownProvider",
    "UnsupportedOperation",
    "WebhookEvent",
    "WorkdayClient",
    "get_client",
    "get_client_class",
    "parse_retry_after",
    "shared_session",
]
