"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from chargers import create_app

app = create_app()
