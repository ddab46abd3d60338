"""Rendering queued mail: subject, plain text and HTML in the recipient's language, in the operator's colours.

A template is ``mail_templates/<name>.toml`` with one table per language (en, fr, de, es, nl), each holding
Jinja strings that see the queued context, the decrypted secrets, ``operator_name`` and ``support_email``:

- ``subject``: one line;
- ``body``: paragraphs separated by blank lines. Plain words only, no markup: every value is escaped in the
  HTML part, and the same text makes the plain-text part;
- ``action`` (optional): the label of a button that links to ``action_url`` (http or https) — a sign-in
  or invitation link. The table's own ``action_url`` string names it (``"{{ link }}"``; empty: no button
  this time); without one, ``action_url`` comes from the context or the secrets. The HTML part repeats the
  link as text under the button (``action_hint`` in ``_layout.toml``), for mail clients that hide buttons;
- ``details`` (optional): a table of label = value, shown as a table in HTML and as ``label: value`` lines
  in text — network names, usernames, passwords.

The frame around it (a header in the operator's brand colour with the operator's name, and the footer) is
``_layout.html`` and ``_layout.txt``; the footer's words are in ``_layout.toml``. Missing context keys
fail loudly (``StrictUndefined``): the message is retried and, if the bug stays, ends up dead.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup

from occupant.kit.validation import LANGUAGES

TEMPLATE_DIR = Path(__file__).resolve().parent / "mail_templates"
DEFAULT_LANGUAGE = "en"
DEFAULT_BRAND_COLOR = "#1f5fbf"
TEXT_WIDTH = 76

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SPACES = re.compile(r"[ \t\r\n]+")  # not str.split(): no-break spaces (French "\u00a0?") must stay
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_REQUIRED_KEYS = ("subject", "body")


class OperatorLike(Protocol):
    """An Operator row, or anything with its branding (read-only attributes)."""

    @property
    def name(self) -> str: ...

    @property
    def brand_color(self) -> str | None: ...

    @property
    def support_email(self) -> str | None: ...


class MessageLike(Protocol):
    """An OutboxMessage row, or anything with its template, language and context."""

    @property
    def template(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def context(self) -> Mapping[str, Any]: ...


class RenderedMail(NamedTuple):
    subject: str
    text: str
    html: str


class TemplateFileError(ValueError):
    """A template file is missing, or lacks a language or a required string."""


class _Compiled(NamedTuple):
    """One language of one template, compiled twice: escaping for HTML and verbatim for text."""

    text: dict[str, Template]
    html: dict[str, Template]
    details: list[tuple[Template, Template, Template, Template]]  # text label, text value, html label, value


class Renderer:
    """Renders the templates of one folder. Compiled templates are cached; safe to share between threads."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self.directory = directory
        options: dict[str, Any] = {
            "loader": FileSystemLoader(directory),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._text_env = Environment(autoescape=False, keep_trailing_newline=True, **options)
        self._html_env = Environment(autoescape=True, **options)
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    # --- loading ----------------------------------------------------------------------------------

    def strings(self, name: str) -> dict[str, dict[str, Any]]:
        """The raw per-language strings of template ``name`` (``_layout`` for the frame)."""
        path = self.directory / f"{name}.toml"
        if not path.is_file():
            raise TemplateFileError(f"mail template file {path.name} does not exist")
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        for language in LANGUAGES:
            table = data.get(language)
            if not isinstance(table, dict):
                raise TemplateFileError(f"{path.name} has no [{language}] table")
            required = ("footer", "action_hint") if name == "_layout" else _REQUIRED_KEYS
            missing = [key for key in required if not isinstance(table.get(key), str)]
            if missing:
                raise TemplateFileError(f"{path.name} [{language}] lacks {', '.join(missing)}")
        return data

    def _compile(self, name: str, language: str) -> _Compiled:
        key = (name, language)
        found = self._compiled.get(key)
        if found is None:
            table = self.strings(name)[language]
            plain = {k: v for k, v in table.items() if isinstance(v, str)}
            details = [
                (
                    self._text_env.from_string(label),
                    self._text_env.from_string(value),
                    self._html_env.from_string(label),
                    self._html_env.from_string(value),
                )
                for label, value in (table.get("details") or {}).items()
            ]
            found = _Compiled(
                text={k: self._text_env.from_string(v) for k, v in plain.items()},
                html={k: self._html_env.from_string(v) for k, v in plain.items()},
                details=details,
            )
            self._compiled[key] = found
        return found

    @cached_property
    def _layout_text(self) -> Template:
        return self._text_env.get_template("_layout.txt")

    @cached_property
    def _layout_html(self) -> Template:
        return self._html_env.get_template("_layout.html")

    # --- rendering --------------------------------------------------------------------------------

    def render(
        self, template: str, language: str, context: Mapping[str, Any], operator: OperatorLike
    ) -> RenderedMail:
        """Render ``template`` in ``language`` (English when the language is unknown) for ``operator``."""
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        values = {key: _clean(value) for key, value in context.items()}
        values["operator_name"] = _clean(operator.name)
        values["support_email"] = _clean(operator.support_email or "")
        strings = self._compile(template, language)
        frame = self._compile("_layout", language)

        subject = _one_line(strings.text["subject"].render(values))
        if "action_url" in strings.text:
            action_url = _one_line(strings.text["action_url"].render(values))
        else:
            action_url = str(values.get("action_url") or "")
        has_action = "action" in strings.text and action_url.startswith(("https://", "http://"))
        brand = _brand_color(operator.brand_color)
        common = {
            "lang": language,
            "subject": subject,
            "operator_name": values["operator_name"],
            "action_url": action_url if has_action else "",
        }

        text = self._layout_text.render(
            **common,
            paragraphs=[_wrap(p) for p in _paragraphs(strings.text["body"].render(values))],
            details=[(label.render(values), value.render(values)) for label, value, _, _ in strings.details],
            action=strings.text["action"].render(values) if has_action else "",
            footer=[_wrap(p) for p in _paragraphs(frame.text["footer"].render(values))],
        )
        html = self._layout_html.render(
            **common,
            brand_color=brand,
            brand_text=_text_color_on(brand),
            paragraphs=[Markup(p) for p in _paragraphs(strings.html["body"].render(values))],
            details=[
                (Markup(label.render(values)), Markup(value.render(values)))
                for _, _, label, value in strings.details
            ],
            action=Markup(strings.html["action"].render(values)) if has_action else "",
            action_hint=Markup(frame.html["action_hint"].render(values)) if has_action else "",
            footer=[Markup(p) for p in _paragraphs(frame.html["footer"].render(values))],
        )
        return RenderedMail(subject, text, html)


RENDERER = Renderer()


def render(
    message: MessageLike, operator: OperatorLike, secrets: Mapping[str, Any] | None = None
) -> RenderedMail:
    """Render a queued message: (subject, text, html) in the message's language, with the operator's branding.

    ``secrets`` are the message's decrypted secrets; they are merged into the context for the template.
    Raises jinja2 errors (a missing context key) and TemplateFileError (a missing template file).
    """
    return RENDERER.render(
        message.template, message.language, {**message.context, **(secrets or {})}, operator
    )


def _clean(value: Any) -> Any:
    """Control characters (line breaks) in a value must not make paragraphs, headers or fake lines."""
    return _CONTROL.sub(" ", value).strip() if isinstance(value, str) else value


def _paragraphs(rendered: str) -> list[str]:
    parts = _PARAGRAPH_BREAK.split(rendered.replace("\r\n", "\n"))
    return [_one_line(part) for part in parts if part.strip()]


def _one_line(value: str) -> str:
    return _SPACES.sub(" ", value).strip()


def _wrap(paragraph: str) -> str:
    return textwrap.fill(paragraph, TEXT_WIDTH, break_long_words=False, break_on_hyphens=False)


def _brand_color(value: str | None) -> str:
    if not value or not _HEX_COLOR.match(value):
        return DEFAULT_BRAND_COLOR
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value.lower()


def _luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


_DARK_TEXT = "#1d2330"


def _text_color_on(background: str) -> str:
    """White or near-black text, whichever contrasts more with the brand colour."""
    luminance = _luminance(background)
    on_white = 1.05 / (luminance + 0.05)
    on_dark = (luminance + 0.05) / (_luminance(_DARK_TEXT) + 0.05)
    return "#ffffff" if on_white >= on_dark else _DARK_TEXT
