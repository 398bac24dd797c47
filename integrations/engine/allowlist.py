"""Issue 13 (H3): where credentials may be sent. A provider's API URL must be https on one of its own hosts.

PROVIDER_ALLOWED_HOSTS (settings) lists each provider's hosts ("*.my.salesforce.com" matches any sub-domain);
the defaults are the providers' real API hosts. Outside production the sandbox's host (SANDBOX_URL) and the
loopback names are allowed too, over http; in production only what is listed. IP literals other than a listed
one, non-http(s) schemes, user:password@ in the URL are refused. The check runs when base_url is saved, before
every request that carries credentials (BaseClient's url_guard) and before Test connectivity probes a URL.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

from integrations.providers import ProviderError

DEFAULT_ALLOWED_HOSTS: dict[str, tuple[str, ...]] = {
    "hubspot": ("api.hubapi.com", "api.hubspot.com"),
    "salesforce": ("login.salesforce.com", "test.salesforce.com", "*.my.salesforce.com", "*.salesforce.com"),
    "greenhouse": ("harvest.greenhouse.io", "api.greenhouse.io", "auth.greenhouse.io"),
    "lever": ("api.lever.co", "api.sandbox.lever.co"),
    "workday": ("*.workday.com", "*.myworkday.com"),
    "pandadoc": ("api.pandadoc.com",),
    "clearbit": ("*.clearbit.com",),
}
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class HostNotAllowed(ProviderError):
    """The URL is not one this provider's credentials may be sent to."""

    def __init__(self, message: str):
        super().__init__("validation", message)


def _listed(provider: str) -> tuple[str, ...]:
    configured = getattr(settings, "PROVIDER_ALLOWED_HOSTS", None) or {}
    return tuple(configured.get(provider, DEFAULT_ALLOWED_HOSTS.get(provider, ())))


def _dev_hosts() -> tuple[str, ...]:
    if getattr(settings, "PRODUCTION", False):
        return ()
    sandbox = (urlsplit(getattr(settings, "SANDBOX_URL", "") or "").hostname or "").lower()
    return tuple(h for h in {*LOOPBACK_NAMES, sandbox} if h)


def _matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().strip()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern


def url_problem(provider: str, url: str) -> str | None:
    """Why `url` may not receive `provider` credentials, or None when it may."""
    try:
        parts = urlsplit(str(url or ""))
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in ("https", "http"):
        return f"only https URLs are allowed, not {parts.scheme or 'no scheme'!r}"
    if not host:
        return f"{url!r} has no host"
    if parts.username or parts.password:
        return "a URL with a user name or password is not allowed"
    dev = _dev_hosts()
    listed = _listed(provider)
    if host in dev:
        return None  # the sandbox, outside production
    # Plain http only to a loopback host the operator listed by name (a sandbox beside a production install).
    if parts.scheme != "https" and not (host in LOOPBACK_NAMES and host in [p.lower() for p in listed]):
        return f"{host} must be reached over https"
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip and host not in [p.lower() for p in listed]:
        return f"{host} is an IP address, not one of {provider}'s hosts"
    if any(_matches(host, p) for p in listed):
        return None
    return f"{host} is not on {provider}'s allow-list (PROVIDER_ALLOWED_HOSTS)"


def check_url(provider: str, url: str) -> None:
    """HostNotAllowed unless `url` may receive `provider` credentials."""
    problem = url_problem(provider, url)
    if problem:
        raise HostNotAllowed(f"{provider}: refused to send credentials to this URL: {problem}")


def guard_for(provider: str):
    """The BaseClient url_guard of a provider: called with each URL before a request with credentials."""
    return lambda url: check_url(provider, url)
