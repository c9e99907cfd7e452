"""chargers: the backend for smart e-bike charging piles in old alley communities."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from config import get_config, validate


def create_app(overrides: dict | None = None, config_name: str | None = None) -> Flask:
    """Build the Flask app. No side effects: no socket, no thread, no scheduler."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(get_config(config_name))
    if overrides:
        app.config.update(overrides)
    validate(app.config)  # a wrong number stops the start, naming its variable
    from . import settings

    settings.check(app.config)  # a half-configured payment channel or official account
    _trust_proxies(app)
    _ensure_sqlite_dir(app)
    from .web.validation import init_app as init_guard

    init_guard(app)  # before any route: the `int` converter, the request check

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind PROXY_COUNT reverse proxies, the client's address is the one the last of
    them appended to X-Forwarded-For (rate limits count per address); with 0, no
    forwarded header is believed."""
    count = app.config.get("PROXY_COUNT", 0)
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def _ensure_sqlite_dir(app: Flask) -> None:
    """SQLite cannot create the folder of its file; make it (the only disk write)."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def register_extensions(app: Flask) -> None:
    from . import dbsetup
    from .extensions import babel, csrf, db, limiter, login_manager, migrate
    from .web.i18n import select_locale, select_timezone

    db.init_app(app)
    dbsetup.init_app(app)
    from .services.charging.availability import install_state_versions

    install_state_versions()
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)


def register_blueprints(app: Flask) -> None:
    from .extensions import csrf
    from .web.api import bp as api_bp
    from .web.auth import bp as auth_bp
    from .web.billing import bp as billing_bp
    from .web.ops import bp as ops_bp
    from .web.pay import bp as pay_bp
    from .web.public_notices import bp as public_notices_bp
    from .web.resident import bp as resident_bp
    from .web.staff import bp as staff_bp

    csrf.exempt(api_bp)  # the API takes Bearer tokens, never the login cookie
    for bp in (resident_bp, billing_bp, public_notices_bp, pay_bp, auth_bp, staff_bp, api_bp,
               ops_bp):
        app.register_blueprint(bp)
    from .web.security import init_app as init_security_headers
    init_security_headers(app)


def register_errorhandlers(app: Flask) -> None:
    from .web.errors import init_app

    init_app(app)


def register_template_helpers(app: Flask) -> None:
    from .web import money
    from .web.i18n import init_template_helpers

    init_template_helpers(app)
    money.init_app(app)


def register_commands(app: Flask) -> None:
    from .cli import init_app

    init_app(app)
