"""WSGI entry point of an installed kefu: ``gunicorn kefu.wsgi:app`` (a checkout's ``wsgi.py``
is the same app)."""

from __future__ import annotations

import os

from dotenv import load_dotenv

from . import create_app

# A local .env fills in what the real environment leaves unset; it never overrides.
load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
app = create_app()
