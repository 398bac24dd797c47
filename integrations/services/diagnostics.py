"""RB-01 step 3, "Test connectivity from server": DNS, TCP, TLS and one HTTP request, each step timed."""

import socket
import ssl
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from integrations.access.actors import OPERATE, Actor, require, scope_integrations
from integrations.engine import allowlist, status_pages
from integrations.engine.calls import base_url_for
from integrations.models import AuditAction, Integration, ProviderStatusReading
from integrations.services.common import audit

STEP_TIMEOUT = 5.0


@dataclass
class ConnectivityStep:
    name: str  # dns, tcp, tls, http
    ok: bool | None  # None: not run (an earlier step failed, or not applicable)
    ms: float | None = None
    detail: str = ""


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, round((time.perf_counter() - started) * 1000, 1)


def probe(url: str, *, timeout: float = STEP_TIMEOUT) -> list[ConnectivityStep]:
    """Run the four steps against a URL; a failed step stops the ones after it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    steps = [
        ConnectivityStep("dns", None),
        ConnectivityStep("tcp", None),
        ConnectivityStep("tls", None, detail="" if secure else "not used (http)"),
        ConnectivityStep("http", None),
    ]
    if not host:
        steps[0].ok, steps[0].detail = False, f"no host in {url!r}"
        return steps
    try:
        infos, steps[0].ms = _timed(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        addresses = sorted({info[4][0] for info in infos})
        steps[0].ok, steps[0].detail = True, ", ".join(addresses)
    except OSError as e:
        steps[0].ok, steps[0].detail = False, f"{type(e).__name__}: {e}"
        return steps
    sock = None
    try:
        sock, steps[1].ms = _timed(lambda: socket.create_connection((host, port), timeout=timeout))
        steps[1].ok, steps[1].detail = True, f"connected to {host}:{port}"
        if secure:
            context = ssl.create_default_context()
            tls, steps[2].ms = _timed(lambda: context.wrap_socket(sock, server_hostname=host))
            steps[2].ok, steps[2].detail = True, f"{tls.version()}, {tls.cipher()[0]}"
            sock = tls
    except ssl.SSLError as e:
        steps[2].ok, steps[2].detail = False, f"{type(e).__name__}: {e}"
        return steps
    except OSError as e:
        steps[1].ok, steps[1].detail = False, f"{type(e).__name__}: {e}"
        return steps
    finally:
        if sock is not None:
            sock.close()
    try:
        response, steps[3].ms = _timed(lambda: requests.get(url, timeout=timeout, allow_redirects=False))
        steps[3].ok = response.status_code < 500
        steps[3].detail = f"HTTP {response.status_code} {response.reason}"
    except requests.RequestException as e:
        steps[3].ok, steps[3].detail = False, f"{type(e).__name__}: {e}"
    return steps


def integration_test_connectivity(*, integrations, actor: Actor) -> list[dict]:
    """Test each integration's provider from this server; every result is audited."""
    require(actor, OPERATE)
    qs = (
        integrations
        if not isinstance(integrations, Integration)
        else Integration.objects.filter(pk=integrations.pk)
    )
    results = []
    for integration in scope_integrations(actor, qs).select_related("tenant")[
        : settings.CONNECTIVITY_MAX_TARGETS
    ]:
        url = base_url_for(integration)
        problem = allowlist.url_problem(integration.provider, url)
        if problem:
            # Issue 13 (H3): only allowed hosts are probed; this is no port scanner.
            steps = [ConnectivityStep("dns", False, detail=f"not probed: {problem}")] + [
                ConnectivityStep(name, None) for name in ("tcp", "tls", "http")
            ]
        else:
            steps = probe(url)
        ok = all(s.ok is not False for s in steps) and steps[-1].ok is True
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_TEST_CONNECTIVITY,
            integration=integration,
            details={"url": url, "ok": ok, "steps": [asdict(s) for s in steps]},
        )
        results.append({"integration": integration, "url": url, "ok": ok, "steps": steps})
    return results


def provider_check_status_page(*, provider: str, actor: Actor) -> ProviderStatusReading | None:
    """RB-01 "check provider status page": read it now from the server; the reading and an audit row say what."""
    require(actor, OPERATE)
    reading = status_pages.read_status_page(provider)
    details = (
        {"outcome": "no integration"}
        if reading is None
        else {"indicator": reading.indicator, "description": reading.description, "error": reading.error}
    )
    audit(actor=actor, action=AuditAction.PROVIDER_CHECK_STATUS_PAGE, provider=provider, details=details)
    return reading
