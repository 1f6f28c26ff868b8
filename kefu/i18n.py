"""Language of the web pages: Simplified Chinese by default, English on request.

The choice comes from ``?lang=`` (remembered in a cookie) or that cookie; the browser's
Accept-Language is deliberately ignored so every visitor starts in Chinese.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_babel import get_locale

from .extensions import babel
from .paths import resource_dir

LANG_COOKIE = "lang"
TRANSLATIONS = resource_dir("translations")


def _valid(lang: str | None) -> str | None:
    if lang and lang in current_app.config["LANGUAGES"]:
        return lang
    return None


def select_locale() -> str:
    """The language of this request: ``?lang=``, then the cookie, then the default (zh)."""
    return (
        _valid(request.args.get("lang"))
        or _valid(request.cookies.get(LANG_COOKIE))
        or current_app.config["BABEL_DEFAULT_LOCALE"]
    )


def current_lang() -> str:
    """The language code of the current request ("zh" or "en")."""
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def localized(zh: str | None, en: str | None) -> str:
    """The English text when the page is in English and one exists, else the Chinese."""
    if current_lang() == "en" and en:
        return en
    return zh or en or ""


def _remember_choice(response: Response) -> Response:
    lang = _valid(request.args.get("lang"))
    if lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response


def init_app(app: Flask) -> None:
    """Set up Flask-Babel with the committed catalogues under ``translations/``."""
    babel.init_app(app, locale_selector=select_locale, default_translation_directories=TRANSLATIONS)
    app.after_request(_remember_choice)
    app.jinja_env.globals.update(current_lang=current_lang, localized=localized)
