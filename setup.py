"""Build step for the wheel: ship templates/, static/, migrations/ and translations/ inside it
(and gunicorn.conf.py, for deployments).

The checkout keeps them at the top level, beside the packages (the layout the project is read
in); a wheel can only carry files inside packages, so ``build_py`` copies them to
``kefu/_bundle/`` in the build tree, where ``kefu.paths`` finds them once installed. Editable
installs are untouched and keep reading the checkout. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("templates", "static", "migrations", "translations")
# Not read by the app, but a deployment needs it next to the wheel's code.
BUNDLED_FILES = ("gunicorn.conf.py",)
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pot")


class BuildWithBundle(build_py):
    """build_py, plus the app's non-Python folders under kefu/_bundle/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "kefu" / "_bundle"
        for name in BUNDLED:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(HERE / name, target / name, ignore=SKIP)
        for name in BUNDLED_FILES:
            shutil.copyfile(HERE / name, target / name)


setup(cmdclass={"build_py": BuildWithBundle})
