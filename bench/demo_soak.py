"""Soak the demo: `make demo` under continuous use and faults for a given time; report any process death.

    python -m bench.demo_soak --hours 2 [--port 8000] [--sandbox-port 8765] [--broker-port 6390]

Starts `make demo` in this checkout, then until the time is up: an operator browses the dashboard, the
integration, sync-log and incident lists and the tracker every few seconds; the JSON API is read; every few
minutes a fault is caused at the sandbox (HubSpot down, Greenhouse rejecting emails, Lever's tokens expired and
revoked, a HubSpot rate limit) and lifted a minute later. Every 30 s the demo's processes are counted. At the end
it prints what it did, every non-2xx answer, every restart message run_demo printed, and whether any process
died. Only 127.0.0.1 is contacted; it stops by itself and stops the demo.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
FAULTS = [
    ("hubspot", {"mode": "down"}),
    ("greenhouse", {"reject": {"field": "email"}}),
    ("lever", {"expire_tokens": True, "revoke_refresh_tokens": True}),
    ("hubspot", {"rate_limit": 5, "window": 10}),
]
LIFT = {"mode": "ok", "rate_limit": None, "reject": None}
PAGES = [
    "/dashboard/",
    "/admin/integrations/integration/",
    "/admin/integrations/synclog/?status__exact=FAILED",
    "/admin/incidents/incident/",
    "/admin/integrations/defect/",
    "/admin/integrations/auditevent/",
]


def _login(base: str, password: str) -> requests.Session:
    s = requests.Session()
    s.get(f"{base}/admin/login/", timeout=30)
    s.post(
        f"{base}/admin/login/",
        data={
            "username": "operator",
            "password": password,
            "csrfmiddlewaretoken": s.cookies.get("csrftoken", ""),
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=30,
    )
    return s


def _demo_processes(pid: int) -> int:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return len(out.split())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8765)
    parser.add_argument(
        "--broker-port", type=int, default=0, help="the embedded broker's (default: the demo's)"
    )
    parser.add_argument("--fault-every", type=float, default=240.0, help="seconds between faults")
    parser.add_argument("--log", default=str(ROOT / "var" / "demo-soak.log"))
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    # `make demo` as README has it; other ports only so that a soak can run beside a demo on the defaults.
    demo_args = f"--port {args.port} --sandbox-port {args.sandbox_port}"
    if args.broker_port:
        demo_args += f" --broker-port {args.broker_port}"
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    log = open(args.log, "w")
    demo = subprocess.Popen(
        ["make", "demo", f"DEMO_ARGS={demo_args}"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        while time.monotonic() - started < 600:
            try:
                if requests.get(f"{base}/admin/login/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(2)
        else:
            print("the demo did not start within 10 minutes; see", args.log)
            return 1
        text = Path(args.log).read_text()
        served = re.findall(r"http://127\.0\.0\.1:(\d+)/admin/", text)
        password = (ROOT / "var" / "demo-login.txt").read_text().strip()
        session = _login(base, password)
        sandbox = f"http://127.0.0.1:{args.sandbox_port}"
        answers: Counter = Counter()
        bad: list[str] = []
        faults = 0
        children_seen: Counter = Counter()
        soak_start = time.monotonic()
        next_fault, lift_at, next_count = soak_start + 60, None, soak_start
        while time.monotonic() - soak_start < args.hours * 3600:
            now = time.monotonic()
            for page in PAGES:
                try:
                    r = session.get(base + page, timeout=60)
                    answers[r.status_code] += 1
                    if r.status_code >= 300 or "/admin/login/" in r.url:
                        bad.append(f"{time.strftime('%H:%M:%S')} {page} -> {r.status_code} {r.url}")
                        session = _login(base, password)
                except requests.RequestException as e:
                    answers["error"] += 1
                    bad.append(f"{time.strftime('%H:%M:%S')} {page} -> {type(e).__name__}")
            if now >= next_fault:
                provider, fault = FAULTS[faults % len(FAULTS)]
                requests.post(f"{sandbox}/_control/{provider}", data=json.dumps(fault), timeout=10)
                faults += 1
                lift_at, lifted_provider = now + 60, provider
                next_fault = now + args.fault_every
            if lift_at and now >= lift_at:
                requests.post(f"{sandbox}/_control/{lifted_provider}", data=json.dumps(LIFT), timeout=10)
                lift_at = None
            if now >= next_count:
                children_seen[_demo_processes(demo.pid)] += 1
                next_count = now + 30
                if demo.poll() is not None:
                    bad.append(f"{time.strftime('%H:%M:%S')} make demo exited with {demo.returncode}")
                    break
            time.sleep(5)
        text = Path(args.log).read_text()
        restarts = [line for line in text.splitlines() if "Restarting the" in line or "restarting it" in line]
        deaths = [line for line in text.splitlines() if "Unrecoverable error" in line]
        hours = (time.monotonic() - soak_start) / 3600
        print(
            f"demo soak: {hours:.2f} h, served on port(s) {sorted(set(served))}, {sum(answers.values())} page loads "
            f"{dict(answers)}, {faults} faults caused and lifted"
        )
        print(
            f"process restarts printed by run_demo: {len(restarts)}; worker 'Unrecoverable error': {len(deaths)}"
        )
        for line in restarts + deaths + bad[:50]:
            print("  ", line)
        return 0 if not restarts and not deaths and demo.poll() is None else 1
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
