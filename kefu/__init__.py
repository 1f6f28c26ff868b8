"""kefu: WeChat customer support for hardware makers."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, ratelimit, security, timeutil
from .extensions import csrf, db, init_db, login_manager, migrate
from .paths import resource_dir

__all__ = ["create_app", "db"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the kefu application (``kefu.wsgi`` reads ``.env`` first)."""
    # No .env here: a test config must not pick up a developer's local settings.
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=resource_dir("templates"),
        static_folder=resource_dir("static"),
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
    # WeChat settings that cannot work (a short AES key, safe mode without an AppID) stop the
    # start here, instead of every message being dropped later.
    from .integrations import build_endpoint

    app.extensions["kefu.endpoint"] = build_endpoint(app.config)

    init_db(app)
    migrate.init_app(app, db, directory=resource_dir("migrations"))

    # Web pages: CSRF on every form, rate limits, installer sessions, zh/en.
    csrf.init_app(app)
    ratelimit.init_app(app)
    login_manager.init_app(app)
    # The console's tables (staff, handoff queue, ratings) are referenced by the core's.
    from . import accounts, csat, handoffs, i18n, staff, video  # noqa: F401

    login_manager.user_loader(accounts.load_installer)
    i18n.init_app(app)
    timeutil.zone(app.config["TIMEZONE"])  # an unknown TIMEZONE fails here, not on a page
    # Security headers, and refusing NUL bytes in paths, queries and forms, on every response.
    security.init_app(app)
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

    import console

    console.init_app(app)
    if app.config["DEMO_CHAT"]:
        from bot.simulator import bp as simulator_bp

        app.register_blueprint(simulator_bp)

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        """Readiness: 200 when this worker can answer (index loaded, database up), else 503."""
        from . import health

        return health.readiness()

    return app
