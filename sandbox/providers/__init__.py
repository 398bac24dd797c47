"""The providers' servers, one module per provider on a shared base (base.py)."""

from __future__ import annotations

from sandbox.providers.base import OAuthProvider, Provider
from sandbox.providers.clearbit import Clearbit
from sandbox.providers.greenhouse import Greenhouse
from sandbox.providers.hubspot import HubSpot
from sandbox.providers.lever import Lever
from sandbox.providers.pandadoc import PandaDoc
from sandbox.providers.salesforce import Salesforce
from sandbox.providers.workday import Workday

PROVIDER_CLASSES: dict[str, type[Provider]] = {
    cls.slug: cls for cls in (HubSpot, Salesforce, Greenhouse, Lever, Workday, PandaDoc, Clearbit)
}


def build_providers(client_id: str, client_secret: str) -> dict[str, Provider]:
    return {slug: cls(client_id, client_secret) for slug, cls in PROVIDER_CLASSES.items()}


__all__ = [
    "PROVIDER_CLASSES",
    "Clearbit",
    "Greenhouse",
    "HubSpot",
    "Lever",
    "OAuthProvider",
    "PandaDoc",
    "Provider",
    "Salesforce",
    "Workday",
    "build_providers",
]
