#!/usr/bin/env bash
# Production smoke test (README, "Production smoke test"): the wheel in a fresh virtualenv outside the checkout,
# README's production commands on PostgreSQL and Redis, deploy/'s files run as they would be in production
# (the systemd units' ExecStart lines, gunicorn.conf.py, Prometheus' and Alertmanager's configs), a login
# through the proxy header, a tenant onboarded against the sandbox, records synced, a worker killed.
# Everything on 127.0.0.1; every process it starts is stopped when it ends, whatever happens.
#
#   bash deploy/smoke.sh          SMOKE_PORT_BASE=8380 SMOKE_PROM_PORT=9390 SMOKE_DB=lineup_smoke SMOKE_REDIS_DB=14
#   SMOKE_KEEP=1                  keep the work folder (logs) afterwards
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
PORT_BASE="${SMOKE_PORT_BASE:-8380}"
WEB_PORT="$PORT_BASE"
SANDBOX_PORT="$((PORT_BASE + 1))"
AM_PORT="$((PORT_BASE + 2))"
PROM_PORT="${SMOKE_PROM_PORT:-9390}"
DB="${SMOKE_DB:-lineup_smoke}"
REDIS_DB="${SMOKE_REDIS_DB:-14}"
PG="postgres://postgres@127.0.0.1:5432"
TENANT="smoke-acme"
PROVIDER="greenhouse"   # an ATS with an API key and webhooks
WORK="$(mktemp -d /tmp/lineup-smoke.XXXXXX)"
STARTED_AT=$SECONDS
PIDS=()

log() { printf '[smoke %3ds] %s\n' "$((SECONDS - STARTED_AT))" "$*"; }
fail() {
  printf '[smoke] FAILED: %s\n' "$*" >&2
  for f in "$WORK"/logs/*.log; do [ -f "$f" ] && { printf '\n--- %s (last lines)\n' "$f" >&2; tail -n 25 "$f" >&2; }; done
  exit 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.25
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 -p 6379 -n "$REDIS_DB" flushdb >/dev/null 2>&1 || true
  if [ "${SMOKE_KEEP:-}" = 1 ] || [ "$rc" != 0 ]; then
    log "work folder kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: in its own session (so that its whole process group can be stopped), output to logs/NAME.log
start() {
  local name=$1; shift
  setsid "$@" >"$WORK/logs/$name.log" 2>&1 < /dev/null &
  PIDS+=("$!")
  eval "PID_${name//-/_}=$!"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && fail "$what (waited ${seconds}s)"
    sleep 0.5
  done
}

# unit_cmd UNIT-FILE KEY [INSTANCE]: a unit's ExecStart/ExecStartPre, with the installation's paths of this run.
unit_cmd() {
  local file="$ROOT/deploy/systemd/$1" key=$2 instance=${3:-}
  { grep -E "^$key=" "$file" || true; } | head -n1 | cut -d= -f2- \
    | sed -e "s#/opt/lineup-ops/venv#$VENV#g" -e "s#/etc/lineup-ops/#$WORK/etc/#g" \
          -e "s#%i#$instance#g" -e "s#%H#$(hostname)#g" -e "s#%h#$(hostname)#g"
}

run_unit() {  # run_unit NAME UNIT-FILE [INSTANCE]: ExecStartPre in the foreground, then ExecStart in the background
  local name=$1 unit=$2 instance=${3:-} pre cmd
  pre="$(unit_cmd "$unit" ExecStartPre "$instance")"
  cmd="$(unit_cmd "$unit" ExecStart "$instance")"
  [ -n "$cmd" ] || fail "$unit has no ExecStart"
  if [ -n "$pre" ]; then
    (cd "$WORK/var" && eval "$pre") >>"$WORK/logs/$name-pre.log" 2>&1 || fail "$unit ExecStartPre: $pre"
  fi
  log "$unit: $cmd"
  # shellcheck disable=SC2086
  (cd "$WORK/var" && start "$name" $cmd; printf '%s\n' "${PIDS[-1]}" >"$WORK/$name.pid")
  PIDS+=("$(cat "$WORK/$name.pid")")
}

django() { (cd "$WORK/var" && "$VENV/bin/lineup-ops" "$@"); }
shell_py() { django shell --no-imports -c "$1"; }

mkdir -p "$WORK"/{logs,etc/prometheus,etc/alertmanager,var,static,prom,am}
for p in "$WEB_PORT" "$SANDBOX_PORT" "$AM_PORT" "$PROM_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "port $p on 127.0.0.1 is in use (SMOKE_PORT_BASE)"; fi
done
pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL does not answer on 127.0.0.1:5432"
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || fail "Redis does not answer on 127.0.0.1:6379"
if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
  log "installing Debian's prometheus and prometheus-alertmanager"
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager >/dev/null
fi

# ------------------------------------------------------------------------------------ 1. the wheel, installed
log "building the wheel from $ROOT"
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$WORK/dist" "$ROOT" 2>"$WORK/logs/wheel.log" \
  || fail "pip wheel"
WHEEL="$(ls "$WORK"/dist/lineup_ops-*.whl)"
VENV="$WORK/venv"
"$PYTHON" -m venv "$VENV"
log "installing $(basename "$WHEEL") into a fresh virtualenv ($VENV)"
if [ -n "${SMOKE_PIP_CACHE:-}" ]; then  # a folder of wheels from an earlier run: no index needed for the dependencies
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --find-links "$SMOKE_PIP_CACHE" "$WHEEL" \
    2>"$WORK/logs/install.log" || fail "pip install"
else
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" 2>"$WORK/logs/install.log" || fail "pip install"
fi
unset PYTHONPATH DJANGO_SETTINGS_MODULE VIRTUAL_ENV
installed="$(cd "$WORK" && "$VENV/bin/python" -c 'import lineup_ops, integrations; print(lineup_ops.__file__)')"
case "$installed" in "$VENV"/*) ;; *) fail "lineup_ops imported from $installed, not from the virtualenv" ;; esac

# ------------------------------------------------------------------------------------ 2. configuration
METRICS_TOKEN="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
FERNET="$("$VENV/bin/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
CLIENT_SECRET="smoke-client-secret-$RANDOM"
# The example environment file, filled in for this run (the keys a real one has, every value replaced).
sed -e "s#^SECRET_KEY=.*#SECRET_KEY=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')#" \
    -e "s#^FERNET_KEYS=.*#FERNET_KEYS=$FERNET#" \
    -e "s#^ALLOWED_HOSTS=.*#ALLOWED_HOSTS=127.0.0.1,localhost#" \
    -e "s#^CONSOLE_URL=.*#CONSOLE_URL=http://127.0.0.1:$WEB_PORT#" \
    -e "s#^CSRF_TRUSTED_ORIGINS=.*#CSRF_TRUSTED_ORIGINS=https://127.0.0.1:$WEB_PORT#" \
    -e "s#^DATABASE_URL=.*#DATABASE_URL=$PG/$DB#" \
    -e "s#^CELERY_BROKER_URL=.*#CELERY_BROKER_URL=redis://127.0.0.1:6379/$REDIS_DB#" \
    -e "s#^PROVIDER_CLIENT_SECRET=.*#PROVIDER_CLIENT_SECRET=$CLIENT_SECRET#" \
    -e "s#^PROVIDER_WEBHOOK_SECRET=.*#PROVIDER_WEBHOOK_SECRET=smoke-webhook-$RANDOM#" \
    -e "s#^METRICS_TOKEN=.*#METRICS_TOKEN=$METRICS_TOKEN#" \
    -e "s#^EMAIL_URL=.*#EMAIL_URL=consolemail://#" \
    -e "s#^STATIC_ROOT=.*#STATIC_ROOT=$WORK/static#" \
    -e "s#^VAR_DIR=.*#VAR_DIR=$WORK/var#" \
    -e "s#^GUNICORN_BIND=.*#GUNICORN_BIND=127.0.0.1:$WEB_PORT#" \
    -e "s#^GUNICORN_WORKERS=.*#GUNICORN_WORKERS=2#" \
    "$ROOT/deploy/systemd/lineup-ops.env.example" >"$WORK/etc/lineup-ops.env"
grep -q change-me "$WORK/etc/lineup-ops.env" && fail "lineup-ops.env.example has a key this script does not fill in"
# Production sends credentials only to listed hosts: this run's provider is the sandbox on loopback.
echo "PROVIDER_ALLOWED_HOSTS=$PROVIDER=127.0.0.1" >>"$WORK/etc/lineup-ops.env"
cp "$ROOT/deploy/gunicorn.conf.py" "$WORK/etc/gunicorn.conf.py"
set -a; . "$WORK/etc/lineup-ops.env"; set +a
export PYTHONUNBUFFERED=1

psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
redis-cli -h 127.0.0.1 -p 6379 -n "$REDIS_DB" flushdb >/dev/null

# ------------------------------------------------------------------------------------ 3. README's commands
log "lineup-ops check --deploy"
django check --deploy --fail-level WARNING >"$WORK/logs/check.log" 2>&1 || fail "check --deploy: $(cat "$WORK/logs/check.log")"
django migrate --no-input >"$WORK/logs/migrate.log" 2>&1 || fail "migrate"
django collectstatic --no-input >"$WORK/logs/collectstatic.log" 2>&1 || fail "collectstatic"
[ -f "$WORK/static/staticfiles.json" ] || fail "collectstatic wrote no manifest into STATIC_ROOT"
django render_alert_rules -o "$WORK/etc/prometheus/lineup-alerts.yml" 2>>"$WORK/logs/check.log"
grep -q "runbook_url: \"http://127.0.0.1:$WEB_PORT/runbooks/RB-09/\"" "$WORK/etc/prometheus/lineup-alerts.yml" \
  || fail "render_alert_rules did not put the runbook links on CONSOLE_URL"

run_unit web lineup-ops-web.service
run_unit worker1 lineup-ops-worker@.service 1
run_unit worker2 lineup-ops-worker@.service 2
run_unit beat lineup-ops-beat.service
wait_for 40 "gunicorn answers" curl -fsS -o /dev/null -H "X-Forwarded-Proto: https" "http://127.0.0.1:$WEB_PORT/admin/login/"
grep -q "Booting worker" "$WORK/logs/web.log" || fail "gunicorn did not start its workers"
[ "$(grep -c "Booting worker" "$WORK/logs/web.log")" -ge 2 ] || fail "gunicorn runs fewer than 2 workers"

workers_online() {
  local out
  out="$(cd "$WORK/var" && "$VENV/bin/celery" -A lineup_ops inspect ping --timeout 3 2>/dev/null || true)"
  grep -q "worker1@" <<<"$out" && grep -q "worker2@" <<<"$out"
}
wait_for 60 "both workers answer a ping under their own node names" workers_online
grep -q DuplicateNodenameWarning "$WORK"/logs/worker*.log && fail "two workers share a node name"

# ------------------------------------------------------------------------------------ 4. HTTP: proxy header, redirect
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "http://127.0.0.1:$WEB_PORT/admin/login/")" = 301 ] || fail "plain HTTP to the admin is not redirected to HTTPS"
[ "$(code -H "Authorization: Bearer $METRICS_TOKEN" "http://127.0.0.1:$WEB_PORT/metrics")" = 200 ] \
  || fail "/metrics over plain HTTP with the token is not 200 (SECURE_REDIRECT_EXEMPT)"
[ "$(code "http://127.0.0.1:$WEB_PORT/metrics")" = 401 ] || fail "/metrics without METRICS_TOKEN is not refused"
grep -q '"GET /metrics HTTP/1.1" 200' "$WORK/logs/web.log" || fail "gunicorn wrote no access log line"

ADMIN_PASSWORD="smoke-$RANDOM-$RANDOM"
DJANGO_SUPERUSER_PASSWORD="$ADMIN_PASSWORD" django createsuperuser --no-input --username smoke-admin --email smoke@example.com \
  >/dev/null || fail "createsuperuser"
log "logging in through the proxy header (X-Forwarded-Proto: https)"
# The cookies are Secure, and curl keeps no Secure cookie from a plain-HTTP URL: they are carried by hand here,
# as the proxy's TLS side would carry them.
cookie() {  # cookie HEADERS-FILE NAME: the value a Set-Cookie line of that file sets
  sed -n "s/^[Ss]et-[Cc]ookie: $2=\([^;]*\);.*/\1/p" "$1" | tail -n1 | tr -d '\r'
}
PROXY=(-H "X-Forwarded-Proto: https" -H "Host: 127.0.0.1:$WEB_PORT")
curl -fsS "${PROXY[@]}" -D "$WORK/login-get.headers" -o /dev/null "http://127.0.0.1:$WEB_PORT/admin/login/"
CSRF="$(cookie "$WORK/login-get.headers" csrftoken)"
[ -n "$CSRF" ] || fail "no CSRF cookie on the login page"
grep -i "^set-cookie: csrftoken=" "$WORK/login-get.headers" | grep -qi "secure" || fail "the CSRF cookie is not Secure"
status="$(curl -s "${PROXY[@]}" -D "$WORK/login-post.headers" -o /dev/null -w '%{http_code}' \
  -H "Cookie: csrftoken=$CSRF" -H "Referer: https://127.0.0.1:$WEB_PORT/admin/login/" \
  --data-urlencode "csrfmiddlewaretoken=$CSRF" --data-urlencode "username=smoke-admin" \
  --data-urlencode "password=$ADMIN_PASSWORD" --data-urlencode "next=/admin/" \
  "http://127.0.0.1:$WEB_PORT/admin/login/")"
[ "$status" = 302 ] || fail "login through the proxy header answered $status"
SESSION="$(cookie "$WORK/login-post.headers" sessionid)"
[ -n "$SESSION" ] || fail "the login set no session cookie"
grep -i "^set-cookie: sessionid=" "$WORK/login-post.headers" | grep -qi "secure" || fail "the session cookie is not Secure"
[ "$(code "${PROXY[@]}" -H "Cookie: sessionid=$SESSION" "http://127.0.0.1:$WEB_PORT/admin/")" = 200 ] \
  || fail "the admin home after login is not 200"
log "logged in as smoke-admin; admin home 200 through the proxy header"

# ------------------------------------------------------------------------------------ 5. Prometheus and Alertmanager
printf '%s' "$METRICS_TOKEN" >"$WORK/etc/prometheus/lineup-ops-metrics-token"
API_TOKEN="$(shell_py "
from integrations.access.actors import System
from integrations.models import ApiTokenScope
from integrations.services import api_token_create
print(api_token_create(actor=System('smoke'), name='alertmanager', scope=ApiTokenScope.ADMIN)[1])" | tail -n1)"
printf '%s' "$API_TOKEN" >"$WORK/etc/alertmanager/lineup-ops-api-token"
sed -e "s#/etc/prometheus/#$WORK/etc/prometheus/#g" -e "s#127.0.0.1:8000#127.0.0.1:$WEB_PORT#g" \
    -e "s#127.0.0.1:9093#127.0.0.1:$AM_PORT#g" -e "s#scrape_interval: 15s#scrape_interval: 3s#" \
    "$ROOT/deploy/prometheus/prometheus.yml" >"$WORK/etc/prometheus/prometheus.yml"
sed -e "s#/etc/alertmanager/#$WORK/etc/alertmanager/#g" -e "s#127.0.0.1:8000#127.0.0.1:$WEB_PORT#g" \
    "$ROOT/deploy/alertmanager/alertmanager.yml" >"$WORK/etc/alertmanager/alertmanager.yml"
promtool check config "$WORK/etc/prometheus/prometheus.yml" >"$WORK/logs/promtool.log" 2>&1 || fail "promtool check config"
promtool check rules "$ROOT/deploy/prometheus/lineup-alerts.yml" >>"$WORK/logs/promtool.log" 2>&1 || fail "promtool check rules"
amtool check-config "$WORK/etc/alertmanager/alertmanager.yml" >"$WORK/logs/amtool.log" 2>&1 || fail "amtool check-config"
start prometheus prometheus --config.file="$WORK/etc/prometheus/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT"
start alertmanager prometheus-alertmanager --config.file="$WORK/etc/alertmanager/alertmanager.yml" \
  --storage.path="$WORK/am" --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
target_up() {
  curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/targets" | "$VENV/bin/python" -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
sys.exit(0 if any(t["labels"].get("job") == "lineup-ops" and t["health"] == "up" for t in targets) else 1)'
}
log "Prometheus on 127.0.0.1:$PROM_PORT: waiting for the lineup-ops target to be up"
wait_for 60 "Prometheus scrapes the console (target up)" target_up
rules_loaded() {
  curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/rules" | grep -q IDISIntegrationProviderErrors
}
wait_for 20 "Prometheus loaded the shipped rules" rules_loaded
log "Alertmanager on 127.0.0.1:$AM_PORT: an alert for hubspot must reach the console"
wait_for 20 "Alertmanager answers" curl -fsS "http://127.0.0.1:$AM_PORT/-/ready"
curl -fsS -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$AM_PORT/api/v2/alerts" -d '[{
  "labels": {"alertname": "IDISIntegrationProviderErrors", "provider": "hubspot", "endpoint": "crm/v3/objects/contacts",
             "severity": "warning", "team": "integrations"},
  "annotations": {"summary": "smoke test"}}]' >/dev/null
incident_opened() {
  shell_py "
from incidents.models import Incident
import sys; sys.exit(0 if Incident.objects.filter(provider='hubspot', detector='alertmanager', detected_by='Alertmanager: IDISIntegrationProviderErrors').exists() else 1)"
}
wait_for 60 "Alertmanager's webhook opened an incident in the console" incident_opened

# ------------------------------------------------------------------------------------ 6. onboarding, sync
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
start sandbox "$VENV/bin/lineup-ops" run_sandbox --port "$SANDBOX_PORT" --client-id "${PROVIDER_CLIENT_ID:-lineup-ops}" \
  --client-secret "$CLIENT_SECRET"
wait_for 20 "the sandbox (from the installed package) answers" curl -fsS "$SANDBOX/_control/health"
N_REMOTE=5
for i in $(seq 1 "$N_REMOTE"); do
  curl -fsS -XPOST "$SANDBOX/_control/$PROVIDER/records" -H 'Content-Type: application/json' -d "{\"account\": \"$TENANT\",
    \"fields\": {\"first_name\": \"Remote\", \"last_name\": \"Person$i\", \"email\": \"remote$i@example.com\"}}" >/dev/null
done
log "connect_integration --tenant $TENANT --provider $PROVIDER --from-sandbox $SANDBOX --mode polling"
django connect_integration --tenant "$TENANT" --tenant-name "Smoke Acme" --provider "$PROVIDER" \
  --from-sandbox "$SANDBOX" --mode polling >"$WORK/logs/connect.log" 2>&1 || fail "connect_integration: $(cat "$WORK/logs/connect.log")"
grep -q "Webhook URL to give" "$WORK/logs/connect.log" || fail "connect_integration printed no webhook URL"
count_local() {  # records of the tenant that came from (or reached) the provider
  shell_py "
from integrations.models import Record, RecordLink
print(RecordLink.objects.filter(integration__tenant__slug='$TENANT').count())" | tail -n1
}
pulled() { [ "$(count_local)" -ge "$N_REMOTE" ]; }
wait_for 60 "the first sync pulled the provider's $N_REMOTE records" pulled
log "pulled $(count_local) records from the sandbox"

# Local records pushed to the provider.
push_records() {  # push_records N PREFIX: N local candidates, changed through the service
  shell_py "
from integrations.models import Record, Tenant
from integrations.services import records_changed
t = Tenant.objects.get(slug='$TENANT')
rs = Record.objects.bulk_create([Record(tenant=t, kind='candidate', payload={'first_name': 'Local', 'last_name': '$2%d' % i,
      'email': '$2%d@example.com' % i, 'company': 'Acme', 'title': 'Engineer'}) for i in range($1)])
records_changed(record_ids=[r.pk for r in rs])" >/dev/null
}
remote_count() {
  curl -fsS "$SANDBOX/_control/$PROVIDER/records?account=$TENANT" | "$VENV/bin/python" -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))'
}
unsynced() {
  shell_py "
from integrations.models import Record
print(Record.objects.filter(tenant__slug='$TENANT').exclude(crm_sync_status='SYNCED').count())" | tail -n1
}
push_records 5 first
all_pushed_5() { [ "$(remote_count)" -ge $((N_REMOTE + 5)) ] && [ "$(unsynced)" = 0 ]; }
wait_for 60 "5 local records pushed to the provider" all_pushed_5
log "pushed: the sandbox holds $(remote_count) records of $TENANT, none unsynced locally"

# ------------------------------------------------------------------------------------ 7. a worker killed mid-sync
N_KILL=60
curl -fsS -XPOST "$SANDBOX/_control/$PROVIDER" -d '{"mode": "slow", "delay": 0.3}' >/dev/null
push_records "$N_KILL" kill
holder=""
find_holder() {
  local out
  out="$(cd "$WORK/var" && "$VENV/bin/celery" -A lineup_ops inspect active --timeout 2 --json 2>/dev/null || true)"
  holder="$("$VENV/bin/python" -c '
import json, sys
try:
    data = json.loads(sys.argv[1] or "{}")
except ValueError:
    sys.exit(1)
for node, tasks in data.items():
    if any(t.get("name") == "integrations.sync_integration" for t in tasks or []):
        print(node.split("@")[0]); sys.exit(0)
sys.exit(1)' "$out")" || return 1
}
wait_for 30 "a worker is running the sync of the $N_KILL new records" find_holder
KILLED_AT=$SECONDS
killed_at_iso="$("$VENV/bin/python" -c 'from datetime import datetime, timezone; print(datetime.now(timezone.utc).isoformat())')"
log "SIGKILL to $holder (the whole process group: main process and pool) while it syncs"
kill -KILL -- "-$(cat "$WORK/$holder.pid")"
curl -fsS -XPOST "$SANDBOX/_control/$PROVIDER" -d '{"mode": "ok"}' >/dev/null

resynced() {  # a sync attempt of the integration started after the kill and succeeded
  shell_py "
from django.utils.dateparse import parse_datetime
from integrations.models import SyncLog
import sys
sys.exit(0 if SyncLog.objects.filter(integration__tenant__slug='$TENANT', status='SUCCESS',
                                     created_at__gt=parse_datetime('$killed_at_iso')).exists() else 1)"
}
deadline=$((KILLED_AT + 30))
until resynced; do [ "$SECONDS" -ge "$deadline" ] && break; sleep 1; done
if resynced; then
  log "the integration synced again $((SECONDS - KILLED_AT)) s after the kill (within 30 s)"
else
  fail "the integration did not sync again within 30 s of the worker's kill"
fi
expected=$((N_REMOTE + 5 + N_KILL))
nothing_lost() { [ "$(remote_count)" -ge "$expected" ] && [ "$(unsynced)" = 0 ]; }
wait_for 240 "every record pushed after the kill (nothing lost)" nothing_lost
[ "$(remote_count)" = "$expected" ] || fail "the sandbox holds $(remote_count) records, expected $expected (a record pushed twice)"
log "nothing lost: all $expected records at the provider, once each, $((SECONDS - KILLED_AT)) s after the kill"
log "the killed worker's unit would be restarted by systemd (Restart=always); starting it again"
run_unit "$holder-restarted" lineup-ops-worker@.service "${holder#worker}"
wait_for 60 "both workers answer again" workers_online
grep -q "Unrecoverable error" "$WORK"/logs/worker*.log && fail "a worker died with an unrecoverable error"

log "PASSED in $((SECONDS - STARTED_AT)) s"
