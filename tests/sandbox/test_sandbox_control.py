"""Sandbox control API: validation, reset, requests log, records, robustness, logs without secrets."""

import logging
import socket

import requests

from tests.sandbox import probe, session_for


def test_health_and_index(sandbox):
    assert requests.get(f"{sandbox.url}/_control/health", timeout=5).json()["ok"] is True
    index = requests.get(f"{sandbox.url}/", timeout=5).json()
    assert index["providers"]["hubspot"] == sandbox.base_url("hubspot")


def test_control_state_shape(sandbox):
    state = sandbox.state("lever")
    assert {"mode", "delay", "rate_limit", "window", "reject", "token_ttl", "stats"} <= set(state)
    assert {"requests", "by_status", "rate_limited", "windows", "max_accepted_in_window"} <= set(
        state["stats"]
    )
    changed = sandbox.control("lever", mode="slow", delay=3, reject={"field": "email", "contains": "@bad"})
    assert (changed["mode"], changed["delay"], changed["reject"]) == (
        "slow",
        3.0,
        {"field": "email", "contains": "@bad"},
    )
    assert sandbox.state("lever")["mode"] == "slow"


def test_control_rejects_bad_bodies_and_changes_nothing(sandbox):
    url = f"{sandbox.url}/_control/hubspot"
    for body in (
        '{"mode": "sideways"}',
        '{"rate_limit": "many"}',
        '{"colour": "red"}',
        "{nope",
        '["mode"]',
        '{"reject": {"contains": "x"}}',
        '{"error_rate": 2}',
        '{"mode": "down", "delay": -1}',
    ):
        r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 400, body
        assert r.json()["error"]
    assert sandbox.state("hubspot")["mode"] == "ok"


def test_unknown_provider_is_404(sandbox):
    assert requests.get(f"{sandbox.url}/_control/myspace", timeout=5).status_code == 404
    r = requests.get(f"{sandbox.url}/myspace/v1/things", timeout=5)
    assert r.status_code == 404 and "hubspot" in r.json()["providers"]
    assert requests.get(f"{sandbox.url}/_control/hubspot/nothing", timeout=5).status_code == 404


def test_credentials_need_an_account(sandbox):
    r = requests.post(f"{sandbox.url}/_control/hubspot/credentials", json={}, timeout=5)
    assert r.status_code == 400
    creds = sandbox.credentials("salesforce", "acme")
    assert {"access_token", "refresh_token", "expires_in", "instance_url"} <= set(creds)


def test_reset_forgets_everything(sandbox):
    creds = sandbox.credentials("greenhouse", "acme")
    sandbox.create_record("greenhouse", "acme", {"first_name": "A", "last_name": "B"})
    sandbox.control("greenhouse", mode="down")
    sandbox.reset()
    assert sandbox.records("greenhouse", "acme") == []
    assert sandbox.state("greenhouse")["mode"] == "ok"
    assert probe(sandbox, "greenhouse", session_for("greenhouse", creds)).status_code == 401


def test_control_records(sandbox):
    rec = sandbox.create_record("workday", "acme", {"firstName": "Ann", "lastName": "Lee"})
    assert rec["account"] == "acme" and len(rec["id"]) == 32 and rec["updated_at"]
    changed = sandbox.update_record("workday", rec["id"], {"lastName": "Li", "firstName": None})
    assert changed["fields"] == {"lastName": "Li"}
    assert [r["id"] for r in sandbox.records("workday")] == [rec["id"]]
    assert sandbox.records("workday", "globex") == []
    sandbox.delete_record("workday", rec["id"])
    assert sandbox.records("workday", "acme") == []
    r = requests.patch(f"{sandbox.url}/_control/workday/records/{rec['id']}", json={"fields": {}}, timeout=5)
    assert r.status_code == 404


def test_requests_log(sandbox):
    acme = session_for("greenhouse", sandbox.credentials("greenhouse", "acme"))
    globex = session_for("greenhouse", sandbox.credentials("greenhouse", "globex"))
    probe(sandbox, "greenhouse", acme)
    probe(sandbox, "greenhouse", globex)
    acme.get(sandbox.base_url("greenhouse") + "/v1/candidates/1", timeout=5)
    log = sandbox.requests("greenhouse")
    assert [(e["account"], e["status"]) for e in log] == [("acme", 200), ("globex", 200), ("acme", 404)]
    assert log[-1]["path"] == "/greenhouse/v1/candidates/1" and log[-1]["method"] == "GET" and log[-1]["at"]
    assert [e["account"] for e in sandbox.requests("greenhouse", account="acme")] == ["acme", "acme"]
    assert len(sandbox.requests("greenhouse", limit=1)) == 1
    assert sandbox.requests("hubspot") == []  # control calls are not logged


def test_no_secrets_in_logs_or_requests_log(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="sandbox")
    creds = sandbox.credentials("hubspot", "acme")
    requests.post(
        sandbox.base_url("hubspot") + "/oauth/v1/token",
        timeout=5,
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["refresh_token"],
            "client_id": "lineup-ops",
            "client_secret": "sandbox-client-secret",
        },
    )
    requests.get(
        sandbox.base_url("hubspot") + "/crm/v3/objects/contacts",
        params={"hapikey": "SUPERSECRETKEY", "code": "SECRETCODE"},
        timeout=5,
    )
    text = caplog.text + str(sandbox.requests("hubspot"))
    assert "/hubspot/crm/v3/objects/contacts" in caplog.text
    for secret in (
        "SUPERSECRETKEY",
        "SECRETCODE",
        creds["refresh_token"],
        creds["access_token"],
        "sandbox-client-secret",
    ):
        assert secret not in text


def test_server_survives_garbage(sandbox):
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=2) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        sock.recv(1024)
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=2) as sock:
        sock.sendall(
            b"POST /hubspot/oauth/v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\xff\xfe\x00\x01\x02"
        )
        assert b"400" in sock.recv(1024).split(b"\r\n")[0]
    r = requests.post(
        sandbox.base_url("lever") + "/oauth/token",
        data="{bad json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 400
    assert requests.get(f"{sandbox.url}/_control/health", timeout=5).status_code == 200


def test_a_state_file_keeps_credentials_and_records_across_restarts(tmp_path):
    import requests as http

    from sandbox import SandboxServer
    from sandbox.state import save_state

    path = str(tmp_path / "sandbox.pickle")
    first = SandboxServer(port=0, state_file=path).start()
    creds = http.post(
        f"{first.url}/_control/greenhouse/credentials", json={"account": "acme"}, timeout=5
    ).json()
    http.post(
        f"{first.url}/_control/greenhouse/records",
        json={
            "account": "acme",
            "fields": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        },
        timeout=5,
    ).raise_for_status()
    save_state(first.state, path)
    first.stop()
    second = SandboxServer(port=0, state_file=path).start()
    try:
        listed = http.get(f"{second.url}/greenhouse/v1/candidates", auth=(creds["api_key"], ""), timeout=5)
        assert listed.status_code == 200
        assert [c["last_name"] for c in listed.json()] == ["Lovelace"]
    finally:
        second.stop()
