"""gunicorn settings for Lineup Ops: `gunicorn lineup_ops.wsgi -c deploy/gunicorn.conf.py` (see README, Production).

Behind a TLS-terminating proxy on the same host or network; the proxy sets X-Forwarded-Proto
(SECURE_PROXY_SSL_HEADER). Each value can be changed from the environment without editing this file.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
# Threads: a Prometheus scrape or an Alertmanager post is answered while slow admin pages run (a scrape
# once failed under 8 concurrent admin users with sync workers).
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# A worker is replaced now and then, so that no slow leak grows for weeks.
max_requests = 2000
max_requests_jitter = 200
# Access log and errors on stdout/stderr: journald (or the smoke test) keeps them.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The client as the proxy saw it, the scheme, and the time taken (microseconds) on each line.
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(D)sus "%(f)s" "%(a)s"'
)
# Only this proxy's X-Forwarded-* headers are believed (comma-separated addresses).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "lineup-ops-web"
