"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...`` (reads a local ``.env``)."""

from kefu.wsgi import app

__all__ = ["app"]
