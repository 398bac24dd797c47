"""Every provider fact the console believes: names, kinds, auth, quotas, base URLs, token lifetimes.

The sandbox keeps its own facts (sandbox/facts.py); a test compares the two, so a wrong fact here is caught.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    name: str
    category: str  # crm, ats, docs, enrichment
    auth_type: str  # oauth2, api_key
    object_type: str  # the provider's name for the records we sync
    record_kind: str  # the local Record.kind that syncs to it
    supports_webhooks: bool
    quota: int  # requests per window for one provider app, shared by every tenant
    window_seconds: int
    status_page: str  # public status page, for the runbooks' "check the provider status page"
    base_url: str  # the provider's API, unless an integration overrides it (a sandbox)
    token_seconds: int | None = None  # access-token lifetime when the token answer has no expires_in


PROVIDERS: dict[str, ProviderInfo] = {
    p.slug: p
    for p in [
        ProviderInfo(
            "hubspot",
            "HubSpot",
            "crm",
            "oauth2",
            "contacts",
            "contact",
            True,
            100,
            10,
            "https://status.hubspot.com",
            "https://api.hubapi.com",
        ),
        ProviderInfo(
            "salesforce",
            "Salesforce",
            "crm",
            "oauth2",
            "Contact",
            "contact",
            False,
            100000,
            86400,
            "https://status.salesforce.com",
            "https://login.salesforce.com",
            7200,
        ),
        ProviderInfo(
            "greenhouse",
            "Greenhouse",
            "ats",
            "api_key",
            "candidates",
            "candidate",
            True,
            50,
            10,
            "https://status.greenhouse.io",
            "https://harvest.greenhouse.io",
        ),
        ProviderInfo(
            "lever",
            "Lever",
            "ats",
            "oauth2",
            "opportunities",
            "candidate",
            True,
            10,
            1,
            "https://status.lever.co",
            "https://api.lever.co",
        ),
        ProviderInfo(
            "workday",
            "Workday",
            "ats",
            "api_key",
            "prospects",
            "candidate",
            False,
            50,
            10,
            "https://status.workday.com",
            "https://wd2-impl-services1.workday.com",
        ),
        ProviderInfo(
            "pandadoc",
            "PandaDoc",
            "docs",
            "api_key",
            "documents",
            "document",
            True,
            60,
            60,
            "https://status.pandadoc.com",
            "https://api.pandadoc.com",
        ),
        ProviderInfo(
            "clearbit",
            "Clearbit",
            "enrichment",
            "api_key",
            "people",
            "claim",
            False,
            600,
            60,
            "https://status.clearbit.com",
            "https://person.clearbit.com",
        ),
    ]
}

PROVIDER_CHOICES = [(p.slug, p.name) for p in PROVIDERS.values()]
