"""WSGI entry point for gunicorn (`gunicorn wsgi:app`) and the `flask` CLI (`FLASK_APP=wsgi.py`).

The environment comes from KARGO_ENV (development by default); production refuses to start
without a real SECRET_KEY (see `config.ProductionConfig.validate`).
"""

from app import create_app

app = create_app()
