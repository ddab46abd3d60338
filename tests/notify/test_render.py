"""Mail templates: every one in every language, escaped, branded, with a plain-text part."""

from __future__ import annotations

import email
import re
from email import policy
from itertools import combinations
from types import SimpleNamespace
from typing import Any

import pytest

from occupant.kit.validation import LANGUAGES
from occupant.notify import mime
from occupant.notify.render import RENDERER, TEMPLATE_DIR, Renderer, TemplateFileError, render
from occupant.notify.templates import TEMPLATES

OPERATOR = SimpleNamespace(
    name="Atelier Lumière", brand_color="#0b6e4f", support_email="aide@lumiere.example"
)


# Keys that choose a wording rather than being shown, with the values they take.
CHOICES: dict[str, tuple[Any, ...]] = {
    "reason": ("created", "activated", "reset", "homesite_changed"),
    "apps": (["portal", "mobile_app"], ["portal"], ["mobile_app"], []),
    "app": ("portal", "mobile_app"),
    "password_set": (True, False),
    "resent": (False, True),
}
# Keys whose sample value must have a certain shape (a link becomes a button only when it is http(s)).
SAMPLES: dict[str, Any] = {
    "link": "https://portal.example/portal/invitation/Val-link",
    "portal_url": "https://portal.example/portal",
    "expires_hours": 72,
}


def sample_context(template: str, **choices: Any) -> dict[str, Any]:
    return {
        key: choices[key]
        if key in choices
        else CHOICES[key][0]
        if key in CHOICES
        else SAMPLES[key]
        if key in SAMPLES
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
            assert str(value) in text and str(value) in html
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


# --- app accounts: invitation, second-app notice, password reset, welcome ---------------------------------

ACCOUNT_TEMPLATES = ("app_invitation", "app_second_invitation", "password_reset", "welcome")
APP_NAMES = {  # how each language names the apps, both together first
    "en": ("the portal and the mobile app", "the portal", "the mobile app"),
    "fr": ("le portail et l'application mobile", "le portail", "l'application mobile"),
    "de": ("das Portal und die mobile App", "das Portal", "die mobile App"),
    "es": ("el portal y la aplicación móvil", "el portal", "la aplicación móvil"),
    "nl": ("het portaal en de mobiele app", "het portaal", "de mobiele app"),
}


def _choice_combinations(template: str) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key in TEMPLATES[template]:
        if key in CHOICES:
            combos = [{**combo, key: value} for combo in combos for value in CHOICES[key]]
    return combos


def _paragraphs(text: str) -> list[str]:
    """The body's paragraphs, without the operator's name on top, the greeting and the footer."""
    return text.split("\n-- \n")[0].split("\n\n")[2:]


@pytest.mark.parametrize("template", ACCOUNT_TEMPLATES)
@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_account_mails_name_the_person_and_carry_their_link_in_every_wording(template, language):
    link_key = "link" if "link" in TEMPLATES[template] else "portal_url"
    for choices in _choice_combinations(template):
        context = {**sample_context(template, **choices), "first_name": "Zoé-Ånne"}
        subject, text, html = RENDERER.render(template, language, context, OPERATOR)

        assert "Zoé-Ånne" in text and "Zoé-Ånne" in html, choices
        assert context[link_key] in text and context[link_key] in html, choices
        if link_key == "link":  # the secret link is the button
            assert f'href="{context[link_key]}"' in html, choices
        assert not re.search(r"{{|{%|}}|%}", subject + text + html), choices
        assert "mobile_app" not in text + subject and "['" not in text, choices  # apps shown by name
        if "occupier_name" in context and not choices.get("resent"):
            assert "Val-occupier_name" in text, choices


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_invitation_has_a_button_with_the_link_and_says_when_it_expires(language):
    context = sample_context("app_invitation", expires_hours=48)
    _, text, html = RENDERER.render("app_invitation", language, context, OPERATOR)

    action = RENDERER.strings("app_invitation")[language]["action"]
    assert f"{action}:\nhttps://portal.example/portal/invitation/Val-link" in text
    assert (
        html.count('href="https://portal.example/portal/invitation/Val-link"') == 2
    )  # button, and spelled out
    assert "48" in text and "48" in html


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_resent_invitation_says_it_is_a_new_link(language):
    first = RENDERER.render("app_invitation", language, sample_context("app_invitation"), OPERATOR)
    again = RENDERER.render(
        "app_invitation", language, sample_context("app_invitation", resent=True), OPERATOR
    )
    assert first.subject != again.subject
    assert _paragraphs(first.text)[0] != _paragraphs(again.text)[0]
    assert _paragraphs(first.text)[1:] == _paragraphs(again.text)[1:]  # the rest (expiry, what then) stays


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_apps_are_named_in_the_recipients_language(language):
    both, portal, mobile = APP_NAMES[language]
    for template in ("app_invitation", "welcome"):
        render_apps = [
            RENDERER.render(template, language, sample_context(template, apps=apps), OPERATOR).text
            for apps in (["portal", "mobile_app"], ["portal"], ["mobile_app"])
        ]
        flat = [" ".join(text.split()) for text in render_apps]  # undo the line wrapping
        assert both in flat[0], template
        assert portal in flat[1] and both not in flat[1], template
        assert mobile in flat[2] and both not in flat[2], template


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_second_app_notice_depends_on_whether_the_password_is_set(language):
    def render_notice(app: str, password_set: bool) -> Any:
        context = sample_context("app_second_invitation", app=app, password_set=password_set)
        return RENDERER.render("app_second_invitation", language, context, OPERATOR)

    set_portal, unset_portal = render_notice("portal", True), render_notice("portal", False)
    set_mobile, unset_mobile = render_notice("mobile_app", True), render_notice("mobile_app", False)

    assert set_portal.subject != set_mobile.subject  # the subject names the new app
    assert _paragraphs(set_portal.text)[1] == _paragraphs(set_mobile.text)[1]  # "the password you use"
    assert _paragraphs(unset_portal.text)[1] == _paragraphs(unset_mobile.text)[1]  # "the earlier link"
    assert _paragraphs(set_portal.text)[1] != _paragraphs(unset_portal.text)[1]
    # A sign-in button only when there is something to sign in to, in the portal, right now.
    assert 'style="display:inline-block' in set_portal.html
    for notice in (unset_portal, set_mobile, unset_mobile):
        assert 'style="display:inline-block' not in notice.html


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_welcome_sends_only_portal_users_to_the_portal(language):
    """A user invited to the mobile app alone cannot sign in to the portal: their welcome has no "Go to the
    portal" button and names the portal only as the place to choose a new password."""

    def render_welcome(apps: list[str]) -> Any:
        return RENDERER.render("welcome", language, sample_context("welcome", apps=apps), OPERATOR)

    portal, both, mobile = (
        render_welcome(["portal"]),
        render_welcome(["portal", "mobile_app"]),
        render_welcome(["mobile_app"]),
    )
    button = 'style="display:inline-block'
    assert button in portal.html and button in both.html and button not in mobile.html
    assert (
        _paragraphs(portal.text)[1] == _paragraphs(both.text)[1]
    )  # "in the portal you can see your details"
    assert _paragraphs(mobile.text)[1] != _paragraphs(portal.text)[1]
    assert "https://portal.example/portal" in mobile.text  # for "forgot password"


def test_the_english_wording_of_the_account_mails():
    """One language read in full, as a reviewer would: the sentences that carry the rules."""

    def text(template: str, **choices: Any) -> str:
        rendered = RENDERER.render(template, "en", sample_context(template, **choices), OPERATOR).text
        return " ".join(rendered.split())

    invitation = text("app_invitation")
    assert "Val-occupier_name has invited you to Atelier Lumière" in invitation
    assert "expires after 72 hours. If it has expired, ask your administrator" in invitation
    assert "Here is a new link" in text("app_invitation", resent=True)
    assert "The link we sent you before no longer works." in text("app_invitation", resent=True)
    assert "sign in with your email address and the password you already use" in text(
        "app_second_invitation", password_set=True
    )
    assert "use the link in the invitation we sent you earlier" in text(
        "app_second_invitation", password_set=False
    )
    assert "expires after 72 hours" in text("password_reset")
    assert "https://portal.example/portal" in text("welcome", apps=[])
    assert "In the portal you can check and update your details" in text("welcome", apps=["portal"])
    assert "you can choose a new one from the portal's sign-in page: https://portal.example/portal" in text(
        "welcome", apps=["mobile_app"]
    )


def test_a_template_can_name_the_link_of_its_button(tmp_path):
    for name in ("_layout.html", "_layout.txt", "_layout.toml"):
        (tmp_path / name).write_text((TEMPLATE_DIR / name).read_text())
    (tmp_path / "nudge.toml").write_text(
        "".join(
            f'[{lang}]\nsubject = "s"\nbody = "b"\naction = "Go"\n'
            'action_url = "{% if show %}{{ link }}{% endif %}"\n'
            for lang in LANGUAGES
        )
    )
    renderer = Renderer(tmp_path)
    shown = renderer.render("nudge", "en", {"show": True, "link": "https://x.example/a?b=c&d=e"}, OPERATOR)
    hidden = renderer.render("nudge", "en", {"show": False, "link": "https://x.example/a"}, OPERATOR)
    assert "Go:\nhttps://x.example/a?b=c&d=e" in shown.text
    assert 'href="https://x.example/a?b=c&amp;d=e"' in shown.html
    assert "x.example" not in hidden.text + hidden.html
