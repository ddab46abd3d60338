"""The portal's translations: complete catalogs, matching placeholders, the language a visitor gets.

``test_every_portal_message_is_translated`` extracts the messages from the portal's sources exactly as
``scripts/i18n.sh`` does: it fails when a page gains a string that fr, de, es or nl does not translate.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import write_po
from jinja2 import DictLoader, Environment

from occupant.kit import i18n

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "src" / "occupant" / "portal"
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE]

# %(name)s, %(num)d, %s, %%; and str.format's {name}.
_PERCENT = re.compile(r"%(?:\((?P<name>\w+)\))?[#0\- +]*\d*(?:\.\d+)?(?P<type>[diouxXeEfFgGcrsa%])")
_BRACES = re.compile(r"(?<!\{)\{(\w*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")


def portal_messages() -> dict[tuple[str, str | None], str]:
    """(msgid, msgctxt) -> "file:line" of every message in the portal's sources, per babel.cfg."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: dict[tuple[str, str | None], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(PORTAL), method_map, options_map, comment_tags=("TRANSLATORS:",)
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault((msgid, context), f"{filename}:{lineno}")
    return found


def placeholders(text: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for match in _PERCENT.finditer(text):
        if match["type"] != "%":
            found[f"%({match['name']})" if match["name"] else f"%{match['type']}"] += 1
    for name in _BRACES.findall(text):
        found["{" + name + "}"] += 1
    return found


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {lang: i18n.read_catalog(lang) for lang in i18n.LANGUAGES}


def test_every_language_has_a_catalog_that_parses(catalogs):
    for lang, catalog in catalogs.items():
        assert str(catalog.locale) == lang
        assert catalog.num_plurals == 2  # en, fr, de, es, nl: one and other
        assert i18n.get_translations(lang) is i18n.get_translations(lang)  # compiled once


def test_every_portal_message_is_translated(catalogs):
    messages = portal_messages()
    assert len(messages) > 50, "babel.cfg no longer finds the portal's messages"
    for lang in TRANSLATED:
        catalog = catalogs[lang]
        problems = []
        for (msgid, context), where in sorted(messages.items(), key=lambda item: item[1]):
            entry = catalog.get(msgid, context=context)
            strings = [] if entry is None else entry.string
            strings = list(strings) if isinstance(strings, tuple) else [strings]
            if entry is None:
                problems.append(f"missing   {where}  {msgid!r}")
            elif entry.fuzzy:
                problems.append(f"fuzzy     {where}  {msgid!r}")
            elif not all(s.strip() for s in strings):
                problems.append(f"empty     {where}  {msgid!r}")
        assert not problems, f"{lang}: run scripts/i18n.sh update, then translate:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_the_placeholders_of_the_source(catalogs, lang):
    wrong = []
    for entry in catalogs[lang]:
        if not entry.id or not entry.string:
            continue
        if isinstance(entry.id, tuple):  # plural: each form uses the placeholders of the source's forms
            singular, plural = (placeholders(text) for text in entry.id)
            forms = [placeholders(text) for text in entry.string]
            if forms[-1] != plural or any(set(form) - set(singular | plural) for form in forms[:-1]):
                wrong.append(entry.id[0])
        elif placeholders(entry.string) != placeholders(entry.id):
            wrong.append(entry.id)
    assert not wrong, f"{lang}: placeholders differ from the source in {wrong}"


def test_placeholders_are_recognised():
    assert placeholders("Hello %(name)s, %(num)d of {count} at 100%%") == Counter(
        {"%(name)": 1, "%(num)": 1, "{count}": 1}
    )
    assert placeholders("{{ not }} a {{placeholder}}") == Counter()


# --- choosing the language ------------------------------------------------------------------------------


def test_an_explicit_choice_wins_then_the_users_language_then_the_browsers():
    header = "de-CH, de;q=0.9, en;q=0.5"
    assert i18n.negotiate("es", "fr", header) == "es"
    assert i18n.negotiate(None, "fr", header) == "fr"
    assert i18n.negotiate(None, None, header) == "de"
    assert i18n.negotiate(None, None, None) == "en"
    assert i18n.negotiate("", "", "") == "en"


def test_unknown_choices_are_skipped_not_trusted():
    assert i18n.negotiate("pt", "xx", "nl") == "nl"
    assert i18n.negotiate("<script>", None, None) == "en"
    assert i18n.negotiate("FR", None, None) == "fr"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ja, pt-BR;q=0.9, nl-BE;q=0.8, fr;q=0.7", "nl"),  # the first one we have
        ("fr;q=0.4, es;q=0.6", "es"),  # by weight, not by position
        ("fr;q=0, de;q=0.1", "de"),  # q=0 means "not this one"
        ("es;q=0.5, nl;q=0.5", "es"),  # equal weights keep the header's order
        ("ja, *;q=0.1", "en"),
        ("de;q=bogus, garbage!!, fr", "fr"),
        ("FR-ca", "fr"),
        ("ja, zh-Hant", "en"),
    ],
)
def test_the_browsers_preference_among_our_languages(header, expected):
    assert i18n.negotiate(None, None, header) == expected


# --- rendering ------------------------------------------------------------------------------------------


def _write_catalog(directory: Path, lang: str, messages: list[tuple[object, object, bool]]) -> None:
    catalog = Catalog(locale=lang, domain=i18n.DOMAIN)
    # The portal's own headers, plural forms included (babel's CLDR data gives French a third form).
    catalog.mime_headers = i18n.read_catalog(lang).mime_headers
    for msgid, msgstr, fuzzy in messages:
        catalog.add(msgid, msgstr, flags=["fuzzy"] if fuzzy else [])
    path = i18n.catalog_path(lang, directory)
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:
        write_po(handle, catalog)


@pytest.fixture
def sample_catalogs(tmp_path, monkeypatch):
    """French and German catalogs of a few messages, in place of the portal's."""
    _write_catalog(
        tmp_path,
        "fr",
        [
            ("Sign in", "Se connecter", False),
            ("Hello %(name)s", "Bonjour %(name)s", False),
            (("%(count)s device", "%(count)s devices"), ("%(count)s appareil", "%(count)s appareils"), False),
            ("Delete", "Suppr. (à revoir)", True),
        ],
    )
    _write_catalog(
        tmp_path, "de", [("Sign in", "Anmelden", False), ("Hello %(name)s", "Hallo %(name)s", False)]
    )
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n._translations.cache_clear()
    yield
    i18n._translations.cache_clear()


TEMPLATES = {
    "page.html": (
        '{% from "macros.html" import button %}'
        "<h1>{{ _('Sign in') }}</h1><p>{{ _('Hello %(name)s', name=name) }}</p>"
        "<p>{% trans count=devices %}{{ count }} device{% pluralize %}{{ count }} devices{% endtrans %}</p>"
        "{{ button() }}<i>{{ gettext('Delete') }}</i>"
    ),
    "macros.html": "{% macro button() %}<button>{{ _('Sign in') }}</button>{% endmacro %}",
}


def _env() -> Environment:
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
    i18n.install_gettext(env)
    return env


def test_a_page_renders_in_the_language_asked_for(sample_catalogs):
    page = _env().get_template("page.html")
    french = i18n.render(page, "fr", {"name": "Zoé <b>", "devices": 3})
    assert french == (
        "<h1>Se connecter</h1><p>Bonjour Zoé &lt;b&gt;</p><p>3 appareils</p>"
        "<button>Se connecter</button><i>Delete</i>"  # a fuzzy translation shows the source text
    )
    assert "<p>1 appareil</p>" in i18n.render(page, "fr", {"name": "Zoé", "devices": 1})
    assert "<h1>Anmelden</h1><p>Hallo Zoé</p><p>2 devices</p>" in i18n.render(
        page, "de", {"name": "Zoé", "devices": 2}
    )  # a message German lacks stays English
    assert "<h1>Sign in</h1>" in i18n.render(page, "pt", {"name": "Zoé", "devices": 2})


def test_the_context_lang_is_enough_for_a_page(sample_catalogs):
    env = _env()
    template = env.from_string("{{ _('Sign in') }}|{{ language_names[lang] }}")
    assert template.render(lang="fr") == "Se connecter|Français"
    assert template.render(lang="de") == "Anmelden|Deutsch"
    with i18n.use_language("de"):
        assert env.from_string("{{ _('Sign in') }}").render() == "Anmelden"
    assert env.from_string("{{ _('Sign in') }}").render() == "Sign in"


def test_one_environment_serves_concurrent_requests_in_different_languages(sample_catalogs):
    page = _env().get_template("page.html")
    expected = {"fr": "<h1>Se connecter</h1>", "de": "<h1>Anmelden</h1>", "en": "<h1>Sign in</h1>"}
    langs = list(expected) * 100

    def render(lang: str) -> tuple[str, str]:
        return lang, i18n.render(page, lang, {"name": "Ada", "devices": 2})

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(render, langs))
    for lang, html in results:
        assert html.startswith(expected[lang])
        assert ("Se connecter</button>" in html) == (lang == "fr")  # the imported macro too


def test_python_code_translates_through_the_same_catalogs(sample_catalogs):
    assert i18n.get_translations("fr").gettext("Sign in") == "Se connecter"
    assert (
        i18n.get_translations("fr").ngettext("%(count)s device", "%(count)s devices", 1)
        == "%(count)s appareil"
    )
    assert i18n.get_translations("en").gettext("Sign in") == "Sign in"
    assert i18n.get_translations("xx") is i18n.get_translations("en")
    assert i18n.N_("Sign in") == "Sign in"
