"""Translations (gettext catalogues through Babel) and the Jinja2 environment that uses them.

Message ids are English; ``locale/<lang>/LC_MESSAGES/*.po`` hold the translations, one file
per room (``report.po``, ``alerts.po``...), merged into one catalogue per language. The .po
files are compiled in memory when first used, so no compiled .mo file can go stale.
French is the default: inspectors read French. ``make messages`` extracts new ids.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
TEMPLATES_DIR = HERE / "templates"
LANGS = ("fr", "en")
DEFAULT_LANG = "fr"


def check_lang(lang: str | None) -> str:
    lang = lang or DEFAULT_LANG
    if lang not in LANGS:
        raise ValueError(f"{lang!r} is not a supported language ({', '.join(LANGS)})")
    return lang


@lru_cache(maxsize=None)
def translations(lang: str) -> Translations:
    """Every catalogue of ``lang``, merged; an id without a translation reads as itself."""
    merged = Translations(domain="vigie")
    merged._catalog = {}  # Translations() without a file starts with no catalogue
    for po in sorted((LOCALE_DIR / check_lang(lang) / "LC_MESSAGES").glob("*.po")):
        with open(po, "rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        merged.merge(Translations(buf, domain="vigie"))
    return merged


def gettext(lang: str):  # noqa: ANN201
    """``_`` for Python code that writes for people (a subject line, a chart's legend)."""
    return translations(lang).gettext


def format_instant(value: datetime | str | None, tz: str) -> str:
    """An instant in the configured zone, with its offset: ``2026-03-01 10:00:00 +01:00``."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


@lru_cache(maxsize=None)
def environment(lang: str) -> jinja2.Environment:
    """The Jinja2 environment of one language: autoescaped, strict about undefined names,
    with ``{% trans %}``/``_()`` bound to that language's catalogue."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.filters["number"] = lambda n: format_decimal(n or 0, locale=lang)
    env.filters["instant"] = format_instant
    return env
