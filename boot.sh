#!/bin/sh
# Start Kargo the way the container does: bring the schema to head, then hand the process to
# gunicorn (exec, so signals from `docker stop` reach it directly).
# Several instances may start at once against one PostgreSQL: migrations/env.py serializes
# them with an advisory lock, so only the first applies revisions.
set -eu
cd "$(dirname "$0")"

export FLASK_APP=wsgi.py
flask db upgrade

# Gunicorn's settings (gevent workers, so slow clients cannot hold every worker; bind address,
# worker counts and timeouts from the environment) live in gunicorn.conf.py.
exec gunicorn --config gunicorn.conf.py wsgi:app
