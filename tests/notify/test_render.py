"""Mail templates: every one in every language, escaped, branded, with a plain-text part."""

from __future__ import annotations

import email
import re
from email import policy
from itertools import combinations
from types import SimpleNamespace

import pytest

from occupant.kit.validation import LANGUAGES
from occupant.notify import mime
from occupant.notify.render import RENDERER, TEMPLATE_DIR, Renderer, TemplateFileError, render
from occupant.notify.templates import TEMPLATES

OPERATOR = SimpleNamespace(
    name="Atelier Lumière", brand_color="#0b6e4f", support_email="aide@lumiere.example"
)


# Keys that choose a wording rather than being shown, with the values they take.
CHOICES = {"reason": ("created", "activated", "reset", "homesite_changed")}


def sample_context(template: str, **choices: str) -> dict[str, str]:
    return {
        key: choices.get(key, CHOICES[key][0])
        if key in CHOICES
        else f"{key.replace('_', '-')}@value.example"
        if "email" in key
        else f"Val-{key}"
        for key in TEMPLATES[template]
    }


def test_every_template_has_a_file_and_every_file_a_registry_line():
    files = {path.stem for path in TEMPLATE_DIR.glob("*.toml") if not path.stem.startswith("_")}
    assert files == set(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_template_renders_in_every_language(template, language):
    context = sample_context(template)
    subject, text, html = RENDERER.render(template, language, context, OPERATOR)

    assert subject and "\n" not in subject and "{{" not in subject
    for key, value in context.items():  # every context value is shown, in both parts
        if key not in CHOICES:
            assert value in text and value in html
    assert "Atelier Lumière" in text and "Atelier Lumière" in html
    assert "#0b6e4f" in html and f'lang="{language}"' in html
    assert "aide@lumiere.example" in text  # the operator's support address, in the footer and body
    assert not re.search(r"[{}]{2}|{%|%}", text + html)  # no unrendered Jinja
    assert "<" not in text.replace("<address>", "")  # no markup in the plain-text part
    assert all(len(line) <= 76 or " " not in line for line in text.splitlines())  # wrapped


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_translations_are_translations_not_copies(template):
    rendered = {
        lang: RENDERER.render(template, lang, sample_context(template), OPERATOR) for lang in LANGUAGES
    }
    for a, b in combinations(LANGUAGES, 2):
        assert rendered[a].subject != rendered[b].subject, (a, b)
        assert rendered[a].text != rendered[b].text, (a, b)
    assert "Bonjour" in rendered["fr"].text and "Hallo" in rendered["de"].text
    assert "Hola" in rendered["es"].text and "Beste" in rendered["nl"].text and "Hello" in rendered["en"].text


def test_values_are_escaped_in_html_and_kept_verbatim_in_text():
    hostile = SimpleNamespace(name='Evil "Ops" <b>', brand_color="red;background:url(x)", support_email=None)
    context = {"first_name": "<script>alert(1)</script>\n\nFake paragraph", "new_email": "a&b@example.com"}
    subject, text, html = RENDERER.render("email_changed_old", "en", context, hostile)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b@example.com" in html and "Evil &#34;Ops&#34; &lt;b&gt;" in html
    assert "<script>alert(1)</script> Fake paragraph" in text  # a value cannot start a paragraph of its own
    assert "url(x)" not in html and "#1f5fbf" in html  # an invalid brand colour falls back to the default
    assert "\n" not in subject


def test_an_unknown_language_falls_back_to_english():
    subject, _, _ = RENDERER.render("email_changed_new", "pt", sample_context("email_changed_new"), OPERATOR)
    assert subject == "Your Atelier Lumière account now uses this email address"


def test_missing_context_fails_loudly():
    with pytest.raises(Exception, match="new_email"):
        RENDERER.render("email_changed_old", "fr", {"first_name": "Zoé"}, OPERATOR)


def test_render_takes_a_message_and_its_secrets():
    message = SimpleNamespace(template="email_changed_old", language="de", context={"first_name": "Jürgen"})
    subject, text, _ = render(message, OPERATOR, {"new_email": "geheim@neu.example"})
    assert subject == "Ihre E-Mail-Adresse bei Atelier Lumière wurde geändert"
    assert "Hallo Jürgen," in text and "geheim@neu.example" in text


def test_the_brand_colour_sets_a_readable_text_colour():
    dark = SimpleNamespace(name="Dark", brand_color="#102030", support_email=None)
    light = SimpleNamespace(name="Light", brand_color="#f5e050", support_email=None)
    ctx = sample_context("email_changed_old")
    assert "color:#ffffff" in RENDERER.render("email_changed_old", "en", ctx, dark).html
    assert "color:#1d2330" in RENDERER.render("email_changed_old", "en", ctx, light).html


LATER_TEMPLATE = '''
[{lang}]
subject = "Wi-Fi ({lang})"
body = """
Hi {{{{ first_name }}}},

Here is your password.
"""
action = "Sign in ({lang})"
[{lang}.details]
"Network" = "{{{{ ssid }}}}"
"Password" = "{{{{ password }}}}"
'''


def test_a_new_template_is_files_plus_a_registry_line(tmp_path):
    """Actions (a button) and details (a table: usernames, passwords) for the templates still to come."""
    for name in ("_layout.html", "_layout.txt", "_layout.toml"):
        (tmp_path / name).write_text((TEMPLATE_DIR / name).read_text())
    (tmp_path / "wifi_password.toml").write_text(
        "".join(LATER_TEMPLATE.format(lang=lang) for lang in LANGUAGES)
    )
    renderer = Renderer(tmp_path)
    context = {
        "first_name": "Ada",
        "ssid": "Lumiere-Secure",
        "password": "p<4>ss&word",
        "action_url": "https://portal.example/sign-in?t=a&b=c",
    }

    subject, text, html = renderer.render("wifi_password", "nl", context, OPERATOR)

    assert subject == "Wi-Fi (nl)"
    assert "Network: Lumiere-Secure" in text and "Password: p<4>ss&word" in text
    assert "Sign in (nl):\nhttps://portal.example/sign-in?t=a&b=c" in text
    assert "<th" in html and "p&lt;4&gt;ss&amp;word" in html
    assert 'href="https://portal.example/sign-in?t=a&amp;b=c"' in html

    _, text, html = renderer.render(
        "wifi_password", "en", {**context, "action_url": "javascript:alert(1)"}, OPERATOR
    )
    assert "javascript" not in html and "javascript" not in text  # only http(s) links become buttons


def test_a_template_file_missing_a_language_is_refused(tmp_path):
    (tmp_path / "half.toml").write_text('[en]\nsubject = "x"\nbody = "y"\n')
    with pytest.raises(TemplateFileError, match=r"\[fr\]"):
        Renderer(tmp_path).strings("half")


def test_the_wire_form_parses_back_to_the_same_message():
    subject, text, html = RENDERER.render(
        "email_changed_old", "fr", sample_context("email_changed_old"), OPERATOR
    )
    data = mime.alternative(
        [
            ("From", mime.address('Atelier Lumière, "Paris"', "no-reply@x.example")),
            ("To", mime.address("", "zoé@tenant.example")),
            ("Subject", mime.unstructured(subject + " — " + "é" * 80)),
        ],
        text,
        html,
    )
    parsed = email.message_from_string(
        data.decode("utf-8"), policy=policy.default
    )  # as an SMTPUTF8 server does
    assert parsed["Subject"] == subject + " — " + "é" * 80
    assert parsed["From"].addresses[0].display_name == 'Atelier Lumière, "Paris"'
    assert parsed["To"].addresses[0].addr_spec == "zoé@tenant.example"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == html
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    with pytest.raises(ValueError):
        mime.address("", "a@b.example\r\nBcc: victim@example.com")


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_wifi_password_mail_says_why_it_was_sent(language):
    rendered = {
        reason: RENDERER.render(
            "wifi_password", language, sample_context("wifi_password", reason=reason), OPERATOR
        )
        for reason in CHOICES["reason"]
    }
    bodies = [r.text.split("\n\n")[2] for r in rendered.values()]  # the paragraph after the greeting
    assert len(set(bodies)) == len(bodies)
    assert rendered["created"].subject != rendered["reset"].subject
    assert all("Val-password" in r.text and "Val-username" in r.text for r in rendered.values())
