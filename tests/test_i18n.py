"""The translations: every string people read is extracted, and French translates it."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from vigie.present import i18n, vocabulary
from vigie.rules import catalogue

REPO = Path(__file__).resolve().parent.parent


def _extracted() -> set[str]:
    method_map = [("vigie/**.py", "python"), ("vigie/present/templates/**.html", "jinja2"),
                  ("vigie/present/templates/**.txt", "jinja2")]
    options = {"vigie/present/templates/**.html": {"extensions": "jinja2.ext.i18n"},
               "vigie/present/templates/**.txt": {"extensions": "jinja2.ext.i18n"}}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            REPO, method_map, options, keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}):
        ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return ids


def test_french_translates_every_string() -> None:
    ids = _extracted()
    assert len(ids) > 50  # the extraction really ran over the templates and the code
    from babel.messages.pofile import read_po

    translated = set()
    for po in (i18n.LOCALE_DIR / "fr" / "LC_MESSAGES").glob("*.po"):
        with open(po, "rb") as f:
            translated |= {m.id for m in read_po(f) if m.id and m.string and not m.fuzzy}
    missing = sorted(ids - translated)
    assert not missing, f"no French for: {missing}"


def test_rule_titles_are_marked_for_translation() -> None:
    assert sorted(vocabulary.RULE_TITLES) == sorted(r.title for r in catalogue())


def test_english_is_the_message_itself_and_dates_keep_their_offset() -> None:
    assert i18n.translations("en").gettext("Summary") == "Summary"
    assert i18n.translations("fr").gettext("Summary") == "Synthèse"
    from datetime import datetime, timezone

    winter = datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc)
    summer = datetime(2026, 7, 15, 9, 30, tzinfo=timezone.utc)
    assert i18n.format_instant(winter, "Europe/Paris") == "2026-01-15 10:30:00 +01:00"
    assert i18n.format_instant(summer, "Europe/Paris") == "2026-07-15 11:30:00 +02:00"
    assert i18n.format_instant("2026-07-15T09:30:00Z", "Europe/Paris") == "2026-07-15 11:30:00 +02:00"
