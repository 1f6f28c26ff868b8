"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``."""

from kefu import create_app

app = create_app()
