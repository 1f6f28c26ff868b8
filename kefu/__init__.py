"""kefu: WeChat customer support for hardware makers."""

from __future__ import annotations

import os
from typing import Any

from dotenv import load_dotenv
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config
from .extensions import csrf, db, limiter, login_manager, migrate

__all__ = ["create_app", "db"]

# The checkout: templates/, static/ and migrations/ live beside the packages.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the kefu application."""
    # A local .env fills in what the real environment leaves unset; it never overrides.
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    if (
        app.config["SECRET_KEY"] == config.DEFAULT_SECRET_KEY
        and not app.debug
        and not app.testing
        and os.environ.get("FLASK_DEBUG") not in {"1", "true"}
    ):
        raise RuntimeError(
            "SECRET_KEY is not set. Set it in the environment or .env "
            "(python -c 'import secrets; print(secrets.token_hex(32))')."
        )

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))

    # Web pages: CSRF on every form, rate limits, installer sessions, zh/en.
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    limiter.init_app(app)
    login_manager.init_app(app)
    from . import accounts, i18n

    login_manager.user_loader(accounts.load_installer)
    i18n.init_app(app)
    if app.config.get("PROXY_FIX_X_FOR"):
        # Behind a reverse proxy the remote address is the proxy's: trust its X-Forwarded-For
        # (and -Proto) so rate limits count real clients and redirects keep https.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=1
        )

    from . import cli

    cli.init_app(app)

    from bot import bp as bot_bp

    app.register_blueprint(bot_bp)
    # WeChat signs its POSTs; it cannot send a CSRF token.
    csrf.exempt(bot_bp)

    from selfservice import bp as selfservice_bp

    app.register_blueprint(selfservice_bp)
    if app.config["DEMO_CHAT"]:
        from bot.simulator import bp as simulator_bp

        app.register_blueprint(simulator_bp)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness probe for load balancers."""
        return {"status": "ok"}

    return app
