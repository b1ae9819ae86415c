"""gunicorn settings for production (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py esimdash.wsgi`.
Command-line flags override these; gunicorn itself reads WEB_CONCURRENCY and FORWARDED_ALLOW_IPS."""

import multiprocessing
import os

# Behind a reverse proxy on the same machine; a proxy elsewhere: GUNICORN_BIND=0.0.0.0:8000 and
# FORWARDED_ALLOW_IPS=<the proxy's address>.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: every request is short (pages, fragments, batches of usage) and mostly waits on
# PostgreSQL, so 2 x cores + 1 processes keep the CPUs busy. The proxy in front buffers slow clients.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))

# The longest requests are a batch of 5,000 records (about 1.5 s on 2 cores) and a CSV export of a
# year of records; a worker silent for longer than this is killed and replaced.
timeout = 60
graceful_timeout = 30
keepalive = 5

# Workers are replaced now and then, so that memory a long-lived process accumulates is returned.
max_requests = 2000
max_requests_jitter = 200

# X-Forwarded-Proto and X-Forwarded-For are trusted from these addresses only (the proxy's).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# esimdash logs one line per request itself, with its request id, user and duration (LOG_FORMAT,
# docs/operations.md), so gunicorn's access log would say it twice: off unless --access-logfile.
accesslog = None
errorlog = "-"
loglevel = "info"
