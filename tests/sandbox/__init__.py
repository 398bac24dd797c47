"""Tests of the sandbox provider over real HTTP (no database)."""

import requests


def session_for(provider: str, creds: dict) -> requests.Session:
    """A requests session carrying the provider's credentials the way its API wants them."""
    s = requests.Session()
    if provider in ("hubspot", "salesforce", "lever"):
        s.headers["Authorization"] = f"Bearer {creds['access_token']}"
    elif provider == "greenhouse":
        s.auth = (creds["api_key"], "")
        s.headers["On-Behalf-Of"] = "4080"
    elif provider == "pandadoc":
        s.headers["Authorization"] = f"API-Key {creds['api_key']}"
    else:  # workday, clearbit
        s.headers["Authorization"] = f"Bearer {creds['api_key']}"
    return s


# A cheap authenticated read per provider: (path below the provider prefix, params)
PROBE = {
    "hubspot": "/crm/v3/objects/contacts",
    "salesforce": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Contact",
    "greenhouse": "/v1/candidates",
    "lever": "/v1/opportunities",
    "workday": "/ccx/api/recruiting/v4/acme/prospects",
    "pandadoc": "/public/v1/documents",
    "clearbit": "/v2/people/find?email=nobody@example.com",
}


def probe(sandbox, provider: str, session: requests.Session, **kwargs) -> requests.Response:
    return session.get(
        sandbox.base_url(provider) + PROBE[provider], timeout=kwargs.pop("timeout", 5), **kwargs
    )
