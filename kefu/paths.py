"""Where the app's non-Python files are: beside the packages in a checkout, inside the wheel.

A checkout (and ``pip install -e .``) keeps ``templates/``, ``static/``, ``migrations/`` and
``translations/`` at the top level, beside ``kefu/``. ``pip install .`` copies them into
``kefu/_bundle/`` (setup.py), because a wheel can only carry files inside its packages.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLE = PACKAGE / "_bundle"
CHECKOUT = PACKAGE.parent
# The folders the wheel carries (setup.py copies exactly these).
BUNDLED = ("templates", "static", "migrations", "translations")


def resource_dir(name: str) -> str:
    """The folder ``name`` (one of BUNDLED): the installed copy if any, else the checkout's."""
    bundled = BUNDLE / name
    return str(bundled if bundled.is_dir() else CHECKOUT / name)
