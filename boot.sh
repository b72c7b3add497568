#!/bin/sh
# Start Kargo the way the container does: bring the schema to head, then hand the process to
# gunicorn (exec, so signals from `docker stop` reach it directly).
# Several instances may start at once against one PostgreSQL: migrations/env.py serializes
# them with an advisory lock, so only the first applies revisions.
set -eu
cd "$(dirname "$0")"

export FLASK_APP=wsgi.py
flask db upgrade

# Prometheus multiprocess mode: every gunicorn worker writes its samples under this folder and
# /metrics adds them up. It must be set before the app is imported, and emptied at each start
# (files of a previous run's workers would be counted again).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${TMPDIR:-/tmp}/kargo-metrics}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

# Gunicorn's settings live in gunicorn.conf.py: gevent workers (so slow clients cannot hold
# every worker), the bind address, worker count and timeouts from the environment.
exec gunicorn --config gunicorn.conf.py wsgi:app
