"""Translations of the occupier portal: gettext catalogs, language negotiation and Jinja rendering.

The catalogs are ``src/occupant/portal/locale/<lang>/LC_MESSAGES/messages.po`` (one per language of
``kit.validation.LANGUAGES``). They are read and compiled in memory the first time a language is used, so
no ``.mo`` file is built or committed; a fuzzy or empty translation falls back to the English source text.
``babel.cfg`` says which files hold messages; ``scripts/i18n.sh update`` extracts them and updates the
catalogs, and ``tests/portal/test_i18n.py`` fails while any portal message lacks a translation.

In a page handler::

    lang = i18n.request_language(request, user_language=user.language if user else None)
    return templates.TemplateResponse(request, "page.html", {"lang": lang, ...})

In a template (after ``i18n.install_gettext(templates.env)``), the language is the context's ``lang``::

    {{ _("Sign in") }}    {{ _("Hello %(name)s", name=user.first_name) }}
    {% trans count=n %}{{ count }} device{% pluralize %}{{ count }} devices{% endtrans %}

Gettext is "newstyle": values are passed as keywords and escaped, and a literal ``%`` is written ``%%``.
Macros imported from another template see ``lang`` when imported ``with context``; otherwise they use the
language set by :func:`use_language` (which :func:`render` sets), or English. In Python code:
``i18n.get_translations(lang).gettext("Saved.")``, and ``N_("...")`` marks a constant for extraction
that a template translates later with ``_(constant)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, Template, pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request

from occupant.kit import validation

LANGUAGES: tuple[str, ...] = tuple(validation.LANGUAGES)  # en, fr, de, es, nl
LANGUAGE_NAMES: dict[str, str] = dict(validation.LANGUAGES)  # each in its own language, for the switcher
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "occupant_lang"  # the visitor's explicit choice; wins over everything else
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "portal" / "locale"

_current_language: ContextVar[str] = ContextVar("occupant_language", default=DEFAULT_LANGUAGE)
_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}|\*)(?:-[A-Za-z0-9]{1,8})*\s*$")


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (a constant translated when shown)."""
    return message


def catalog_path(lang: str, directory: Path | None = None) -> Path:
    return (directory or LOCALE_DIR) / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str, directory: Path | None = None) -> Catalog:
    """The parsed ``.po`` catalog of ``lang``; raises babel's PoFileError when the file is malformed."""
    with catalog_path(lang, directory).open("rb") as handle:
        return read_po(handle, locale=lang, domain=DOMAIN, abort_invalid=True)


def compile_catalog(catalog: Catalog) -> Translations:
    """Compile a catalog in memory. Fuzzy entries are left out, so they show the English source text."""
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def get_translations(lang: str) -> Translations:
    """The portal's translations in ``lang`` (English for an unknown language), compiled once per process."""
    return _translations(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


@cache
def _translations(lang: str) -> Translations:
    if not catalog_path(lang).is_file():  # English needs no catalog: the source text is English
        return Translations(domain=DOMAIN)
    return compile_catalog(read_catalog(lang))


# --- choosing the language ----------------------------------------------------------------------------


def negotiate(
    request_lang_cookie: str | None, user_language: str | None, accept_language_header: str | None
) -> str:
    """The language to show: the ``occupant_lang`` cookie (an explicit choice), else the signed-in user's
    language, else the browser's Accept-Language preference among ours, else English."""
    for choice in (request_lang_cookie, user_language):
        if choice and choice.strip().lower() in LANGUAGES:
            return choice.strip().lower()
    for lang in parse_accept_language(accept_language_header):
        if lang in LANGUAGES:
            return lang
        if lang == "*":
            return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def parse_accept_language(header: str | None) -> list[str]:
    """The primary language subtags of an Accept-Language header, most wanted first ("fr-CH;q=0.9" → fr).

    Ranges with q=0 (or an unreadable weight) are dropped; equal weights keep the header's order.
    """
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:1000].split(",")):
        tag, _, params = item.partition(";")
        match = _LANGUAGE_RANGE.match(tag)
        if match is None:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if 0 < weight <= 1:
            weighted.append((-weight, position, match.group(1).lower()))
    return [lang for _, _, lang in sorted(weighted)]


def request_language(request: Request, user_language: str | None = None) -> str:
    """:func:`negotiate` for a request: its ``occupant_lang`` cookie, the user's language, its header."""
    return negotiate(request.cookies.get(LANG_COOKIE), user_language, request.headers.get("accept-language"))


# --- Jinja ------------------------------------------------------------------------------------------


def install_gettext(env: Environment) -> None:
    """Enable ``{% trans %}``, ``_()``, ``gettext()``, ``ngettext()``, ``pgettext()`` in ``env``.

    Done once, when the environment is built. The callables installed are shared but stateless: each call
    translates into the language of the template context's ``lang`` (see :func:`language_of`), so one
    environment serves concurrent requests in different languages.
    """
    env.add_extension("jinja2.ext.i18n")
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace collapsed, as extracted
    env.globals.update(
        gettext=_jinja_gettext,
        ngettext=_jinja_ngettext,
        pgettext=_jinja_pgettext,
        npgettext=_jinja_npgettext,
        language_names=LANGUAGE_NAMES,
    )


def language_of(context: Context | Mapping[str, Any]) -> str:
    """A template's language: its context's ``lang``, else the one :func:`use_language` set, else English."""
    lang = context.get("lang")
    return lang if isinstance(lang, str) and lang in LANGUAGES else _current_language.get()


@contextmanager
def use_language(lang: str) -> Iterator[None]:
    """Within the block, templates whose context has no ``lang`` (macros imported without context,
    shared error pages) render in ``lang``. Per thread and per asyncio task."""
    token = _current_language.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current_language.reset(token)


def render(template: Template, lang: str, context: Mapping[str, Any] | None = None) -> str:
    """Render ``template`` in ``lang``: ``lang`` is put in its context and set for imported macros."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    with use_language(lang):
        return template.render({**(context or {}), "lang": lang})


def _finish(context: Context, text: str, variables: dict[str, Any]) -> str:
    # Newstyle gettext, as jinja2.ext does it: always a format string, escaped when autoescaping.
    result: str = Markup(text) if context.eval_ctx.autoescape else text
    return result % variables


@pass_context
def _jinja_gettext(context: Context, message: str, /, **variables: Any) -> str:
    return _finish(context, get_translations(language_of(context)).gettext(message), variables)


@pass_context
def _jinja_ngettext(context: Context, singular: str, plural: str, num: int, /, **variables: Any) -> str:
    variables.setdefault("num", num)
    text = get_translations(language_of(context)).ngettext(singular, plural, num)
    return _finish(context, text, variables)


@pass_context
def _jinja_pgettext(context: Context, msgctxt: str, message: str, /, **variables: Any) -> str:
    variables.setdefault("context", msgctxt)
    text = get_translations(language_of(context)).pgettext(msgctxt, message)
    return _finish(context, str(text), variables)


@pass_context
def _jinja_npgettext(
    context: Context, msgctxt: str, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    variables.setdefault("context", msgctxt)
    variables.setdefault("num", num)
    text = get_translations(language_of(context)).npgettext(msgctxt, singular, plural, num)
    return _finish(context, str(text), variables)
