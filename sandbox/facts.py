"""What the providers' servers are: the facts the sandbox serves, written from the providers' public docs.

Source: ../shared/docs/provider-api-facts.md ("the facts document" below) and, where it says nothing,
docs/provider-contract.md. This is the sandbox's own copy, on purpose: it never reads the console's
`integrations/catalog.py`, so that a wrong value in the catalogue shows up as a difference in
tests/sandbox/test_facts.py instead of being believed by both sides.

Where the facts document marks a fact unconfirmed, the sandbox follows the nearest confirmed provider (as the
document asks); each such value says so below. The providers' paths (API routes, token and consent endpoints)
are written in each provider's own module under `sandbox/providers/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderFacts:
    slug: str
    name: str
    category: str  # crm, ats, docs, enrichment
    auth_type: str  # oauth2, api_key
    quota: int  # requests per window for one app, counted across all its customer accounts
    window_seconds: int
    token_ttl: int | None  # lifetime of an access token, seconds (oauth2); None for API keys
    webhook_signing: (
        str | None
    )  # how its webhooks are signed (see sandbox/providers/<slug>.py); None: sends none
    status_page: str  # the provider's public status page
    # Where a client of the real provider starts: its API host (the sandbox serves the same paths under
    # /<slug>); Salesforce: the login host, whose token answer names the instance. None: one host per customer.
    base_url: str | None

    @property
    def supports_webhooks(self) -> bool:
        return self.webhook_signing is not None


PROVIDER_FACTS: dict[str, ProviderFacts] = {
    f.slug: f
    for f in [
        # OAuth apps: 100 requests / 10 s (private apps have 190 / 10 s and a daily quota; we are an OAuth app).
        # Access token 30 min. Webhooks v3: base64 HMAC-SHA256(secret, method + URI + body + timestamp).
        ProviderFacts(
            "hubspot",
            "HubSpot",
            "crm",
            "oauth2",
            quota=100,
            window_seconds=10,
            token_ttl=30 * 60,
            webhook_signing="hubspot-v3",
            status_page="https://status.hubspot.com",
            base_url="https://api.hubapi.com",
        ),
        # Daily API request limit (Sforce-Limit-Info: api-usage=n/100000); the session timeout is 2 h by default.
        # No HMAC webhooks (events come through the Pub/Sub API). Trust, not Statuspage.
        ProviderFacts(
            "salesforce",
            "Salesforce",
            "crm",
            "oauth2",
            quota=100_000,
            window_seconds=24 * 3600,
            token_ttl=2 * 3600,
            webhook_signing=None,
            status_page="https://status.salesforce.com",
            base_url="https://login.salesforce.com",
        ),
        # Harvest v1: HTTP Basic with the API key; X-RateLimit-Limit 50 per 10 s.
        # Webhooks: "Signature: sha256 <hex HMAC-SHA256(secret, raw body)>".
        ProviderFacts(
            "greenhouse",
            "Greenhouse",
            "ats",
            "api_key",
            quota=50,
            window_seconds=10,
            token_ttl=None,
            webhook_signing="greenhouse-sha256",
            status_page="https://status.greenhouse.io",
            base_url="https://harvest.greenhouse.io",
        ),
        # OAuth for partner apps (access token 1 h); 10 requests / s steady (3P).
        # Webhooks: signature in the body, hex HMAC-SHA256(signatureToken, token + triggeredAt) (3P).
        ProviderFacts(
            "lever",
            "Lever",
            "ats",
            "oauth2",
            quota=10,
            window_seconds=1,
            token_ttl=60 * 60,
            webhook_signing="lever-body",
            status_page="https://status.lever.co",
            base_url="https://api.lever.co",
        ),
        # Treated as an API-key provider (as the runbook does). Rate limits unconfirmed: the nearest confirmed
        # provider, Greenhouse (the other ATS with one key per customer), 50 / 10 s. Webhooks unconfirmed: none.
        # REST lives at https://{host}/ccx/api/..., the host differing per customer: no one base URL.
        ProviderFacts(
            "workday",
            "Workday",
            "ats",
            "api_key",
            quota=50,
            window_seconds=10,
            token_ttl=None,
            webhook_signing=None,
            status_page="https://status.workday.com",
            base_url=None,
        ),
        # Not in the facts document: docs/provider-contract.md (API-Key header; webhooks signed by a
        # ?signature=<hex HMAC-SHA256(secret, body)> query parameter); 60 requests / minute; the public API's
        # host (its paths start /public/v1/).
        ProviderFacts(
            "pandadoc",
            "PandaDoc",
            "docs",
            "api_key",
            quota=60,
            window_seconds=60,
            token_ttl=None,
            webhook_signing="pandadoc-query",
            status_page="https://status.pandadoc.com",
            base_url="https://api.pandadoc.com",
        ),
        # Not in the facts document: docs/provider-contract.md (Bearer secret key, lookups only, no webhooks);
        # 600 requests / minute; the Person API's host (GET /v2/people/find).
        ProviderFacts(
            "clearbit",
            "Clearbit",
            "enrichment",
            "api_key",
            quota=600,
            window_seconds=60,
            token_ttl=None,
            webhook_signing=None,
            status_page="https://status.clearbit.com",
            base_url="https://person.clearbit.com",
        ),
    ]
}

WEBHOOK_PROVIDERS: tuple[str, ...] = tuple(slug for slug, f in PROVIDER_FACTS.items() if f.supports_webhooks)
