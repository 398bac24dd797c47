"""Sandbox quotas (per app, fixed windows), failure modes and status pages."""

import threading
import time

import pytest
import requests

from tests.sandbox import probe, session_for

PROVIDERS = ["hubspot", "salesforce", "greenhouse", "lever", "workday", "pandadoc", "clearbit"]


def client(sandbox, provider, account="acme"):
    return session_for(provider, sandbox.credentials(provider, account))


def test_default_quota_comes_from_the_sandbox_facts(sandbox):
    """The sandbox serves its own facts (sandbox/facts.py), never the console's catalogue: see test_facts.py."""
    from sandbox.facts import PROVIDER_FACTS

    for slug in PROVIDERS:
        state = sandbox.state(slug)
        facts = PROVIDER_FACTS[slug]
        assert (state["rate_limit"], state["window"]) == (facts.quota, facts.window_seconds)
        assert state["token_ttl"] == facts.token_ttl
        assert state["quota_source"] == "catalog"
    changed = sandbox.control("hubspot", rate_limit=5, window=60)
    assert (changed["rate_limit"], changed["window"], changed["quota_source"]) == (5, 60, "control")
    back = sandbox.control("hubspot", rate_limit=None)
    assert (back["rate_limit"], back["window"]) == (100, 10)


def test_hubspot_429(sandbox):
    sandbox.control("hubspot", rate_limit=3, window=60)
    s = client(sandbox, "hubspot")
    remaining = []
    for _ in range(3):
        r = probe(sandbox, "hubspot", s)
        assert r.status_code == 200
        assert r.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        remaining.append(r.headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    r = probe(sandbox, "hubspot", s)
    assert r.status_code == 429
    body = r.json()
    assert body["errorType"] == "RATE_LIMIT" and body["status"] == "error" and body["correlationId"]
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert r.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in r.headers
    stats = sandbox.state("hubspot")["stats"]
    assert stats["rate_limited"] == 1
    assert stats["by_status"] == {"200": 3, "429": 1}
    assert stats["max_accepted_in_window"] == 3
    assert stats["windows"][-1]["requests"] == 4 and stats["windows"][-1]["rejected"] == 1
    assert sandbox.requests("hubspot")[-1]["status"] == 429


def test_greenhouse_retry_after_is_a_unix_timestamp(sandbox):
    sandbox.control("greenhouse", rate_limit=1, window=30)
    s = client(sandbox, "greenhouse")
    first = probe(sandbox, "greenhouse", s)
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("1", "0")
    r = probe(sandbox, "greenhouse", s)
    assert r.status_code == 429
    retry_at = int(r.headers["Retry-After"])
    now = time.time()
    assert now < retry_at <= now + 31
    assert retry_at % 30 == 0  # the end of the fixed window
    assert "message" in r.json()


def test_salesforce_403_request_limit_exceeded(sandbox):
    sandbox.control("salesforce", rate_limit=2)
    s = client(sandbox, "salesforce")
    assert probe(sandbox, "salesforce", s).headers["Sforce-Limit-Info"] == "api-usage=1/2"
    assert probe(sandbox, "salesforce", s).headers["Sforce-Limit-Info"] == "api-usage=2/2"
    r = probe(sandbox, "salesforce", s)
    assert r.status_code == 403
    assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert "Retry-After" not in r.headers
    assert sandbox.state("salesforce")["stats"]["rate_limited"] == 1


@pytest.mark.parametrize(
    "provider,retry_after", [("lever", False), ("workday", True), ("pandadoc", True), ("clearbit", True)]
)
def test_other_429s(sandbox, provider, retry_after):
    sandbox.control(provider, rate_limit=0, window=20)
    r = probe(sandbox, provider, client(sandbox, provider))
    assert r.status_code == 429
    assert r.headers["X-RateLimit-Limit"] == "0" and r.headers["X-RateLimit-Remaining"] == "0"
    if retry_after:
        assert 1 <= int(r.headers["Retry-After"]) <= 20
    else:
        assert "Retry-After" not in r.headers
    body = r.json()
    if provider == "lever":
        assert body["code"] == "TooManyRequests"
    if provider == "pandadoc":
        assert body["type"] == "request_error" and "throttled" in body["detail"]
    if provider == "clearbit":
        assert body["error"]["type"] == "rate_limit"


def test_quota_is_per_app_shared_by_accounts(sandbox):
    sandbox.control("workday", rate_limit=2, window=60)
    acme, globex = client(sandbox, "workday", "acme"), client(sandbox, "workday", "globex")
    assert probe(sandbox, "workday", acme).status_code == 200
    r = globex.get(sandbox.base_url("workday") + "/ccx/api/recruiting/v4/globex/prospects", timeout=5)
    assert r.status_code == 200
    assert probe(sandbox, "workday", acme).status_code == 429


def test_fixed_window_resets(sandbox):
    sandbox.control("lever", rate_limit=2, window=1)
    s = client(sandbox, "lever")
    # start at the beginning of a window so that the three calls share it
    time.sleep(1 - time.time() % 1 + 0.01)
    codes = [probe(sandbox, "lever", s).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    time.sleep(1 - time.time() % 1 + 0.01)
    assert probe(sandbox, "lever", s).status_code == 200
    windows = sandbox.state("lever")["stats"]["windows"]
    assert [(w["requests"], w["rejected"]) for w in windows[-2:]] == [(3, 1), (1, 0)]


def test_quota_holds_under_concurrency(sandbox):
    sandbox.control("pandadoc", rate_limit=10, window=60)
    creds = sandbox.credentials("pandadoc", "acme")
    codes = []
    lock = threading.Lock()

    def worker():
        r = probe(sandbox, "pandadoc", session_for("pandadoc", creds))
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) == 10 and codes.count(429) == 15
    stats = sandbox.state("pandadoc")["stats"]
    assert stats["max_accepted_in_window"] == 10 and stats["rate_limited"] == 15


def test_token_endpoint_and_status_pages_are_not_counted(sandbox):
    sandbox.control("hubspot", rate_limit=0, window=60)
    creds = sandbox.credentials("hubspot", "acme")
    r = requests.post(
        sandbox.base_url("hubspot") + "/oauth/v1/token",
        timeout=5,
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["refresh_token"],
            "client_id": "lineup-ops",
            "client_secret": "sandbox-client-secret",
        },
    )
    assert r.status_code == 200
    assert requests.get(sandbox.base_url("hubspot") + "/api/v2/status.json", timeout=5).status_code == 200
    assert sandbox.state("hubspot")["stats"]["rate_limited"] == 0


# ---------------------------------------------------------------- modes
DOWN = {
    "hubspot": lambda b: b["status"] == "error" and b["category"] == "SERVICE_UNAVAILABLE",
    "salesforce": lambda b: b[0]["errorCode"] == "SERVER_UNAVAILABLE",
    "greenhouse": lambda b: "message" in b,
    "lever": lambda b: b["code"] == "ServiceUnavailable",
    "workday": lambda b: "error" in b,
    "pandadoc": lambda b: b["type"] == "server_error",
    "clearbit": lambda b: b["error"]["type"] == "service_unavailable",
}


def status_of(sandbox, provider):
    if provider == "salesforce":
        return requests.get(sandbox.base_url(provider) + "/v1/instances/NA1/status", timeout=5).json()[
            "status"
        ]
    return requests.get(sandbox.base_url(provider) + "/api/v2/status.json", timeout=5).json()["status"][
        "indicator"
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_down_mode(sandbox, provider):
    s = client(sandbox, provider)
    assert status_of(sandbox, provider) in ("none", "OK")
    sandbox.control(provider, mode="down")
    r = probe(sandbox, provider, s)
    assert r.status_code == 503
    assert DOWN[provider](r.json()), r.text
    assert status_of(sandbox, provider) in ("major", "MAJOR_INCIDENT_CORE")
    sandbox.control(provider, mode="ok")
    assert probe(sandbox, provider, s).status_code in (200, 404)
    assert sandbox.state(provider)["stats"]["by_status"]["503"] == 1


def test_statuspage_shapes(sandbox):
    ok = requests.get(sandbox.base_url("greenhouse") + "/api/v2/summary.json", timeout=5).json()
    assert ok["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert set(ok["page"]) >= {"id", "name", "url", "time_zone", "updated_at"}
    assert all(c["status"] == "operational" for c in ok["components"]) and ok["incidents"] == []
    sandbox.control("greenhouse", mode="down")
    down = requests.get(sandbox.base_url("greenhouse") + "/api/v2/summary.json", timeout=5).json()
    assert all(c["status"] == "major_outage" for c in down["components"]) and down["incidents"]
    trust = requests.get(sandbox.base_url("salesforce") + "/v1/instances/na1/status", timeout=5).json()
    assert trust["key"] == "NA1" and trust["status"] == "OK"


def test_refuse_mode_closes_the_socket(sandbox):
    s = client(sandbox, "greenhouse")
    sandbox.control("greenhouse", mode="refuse")
    with pytest.raises(requests.exceptions.ConnectionError):
        probe(sandbox, "greenhouse", s)
    assert sandbox.state("greenhouse")["stats"]["refused"] == 1
    assert status_of(sandbox, "greenhouse") == "major"  # the status page lives elsewhere and still answers
    sandbox.control("greenhouse", mode="ok")
    assert probe(sandbox, "greenhouse", s).status_code == 200


def test_slow_mode(sandbox):
    s = client(sandbox, "hubspot")
    sandbox.control("hubspot", mode="slow", delay=1.5)
    with pytest.raises(requests.exceptions.Timeout):
        probe(sandbox, "hubspot", s, timeout=0.5)
    sandbox.control("hubspot", delay=0.2)
    started = time.monotonic()
    assert probe(sandbox, "hubspot", s, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert status_of(sandbox, "hubspot") == "minor"


def test_flaky_mode(sandbox):
    s = client(sandbox, "workday")
    sandbox.control("workday", mode="flaky", error_rate=1.0, rate_limit=1000)
    assert probe(sandbox, "workday", s).status_code == 503
    sandbox.control("workday", error_rate=0.0)
    assert probe(sandbox, "workday", s).status_code == 200
    sandbox.control("workday", error_rate=0.5)
    codes = {probe(sandbox, "workday", s).status_code for _ in range(40)}
    assert codes == {200, 503}


def test_status_pages_need_no_credentials_and_ignore_quota(sandbox):
    for provider in PROVIDERS:
        sandbox.control(provider, rate_limit=0)
        assert status_of(sandbox, provider) in ("none", "OK")
