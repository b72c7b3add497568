# Kargo portal image: gunicorn serving wsgi:app on port 8001 after `flask db upgrade` (boot.sh).
# Build: docker build -t kargo .   Run with PostgreSQL: see docker-compose.yml and the README.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/kargo

# Runtime dependencies only (requirements-prod.lock is pinned and kept in step with
# requirements.lock by `make lock`); a layer of its own so code changes do not reinstall them.
COPY requirements-prod.lock ./
RUN pip install --no-cache-dir -r requirements-prod.lock

# The code is owned by root and read-only for the service user; only instance/ (the default
# SQLite location when DATABASE_URL is not set) is writable. A fixed numeric id lets
# orchestrators check runAsNonRoot and lets a host volume be chowned to match.
RUN groupadd --system --gid 10001 kargo \
    && useradd --system --uid 10001 --gid kargo --no-log-init --home-dir /srv/kargo \
        --shell /usr/sbin/nologin kargo \
    && mkdir instance \
    && chown kargo:kargo instance
COPY app ./app
COPY migrations ./migrations
COPY config.py wsgi.py gunicorn.conf.py ./
COPY --chmod=0755 boot.sh ./

ENV KARGO_ENV=production \
    FLASK_APP=wsgi.py \
    PORT=8001 \
    WEB_CONCURRENCY=4

USER 10001:10001
EXPOSE 8001

# /healthz runs a query, so an unreachable database marks the container unhealthy (503 raises).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8001') + '/healthz', timeout=4)"]

CMD ["/srv/kargo/boot.sh"]
