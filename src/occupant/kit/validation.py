"""Normalising emails and phone numbers, with field errors a person can act on."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from occupant.kit.errors import FieldErrors

LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "nl": "Nederlands"}


def normalize_email(value: str, field: str = "email") -> tuple[str, str]:
    """Return (email as stored, uniqueness key). Trimmed, domain lower-cased; the key is all lower case."""
    raw = (value or "").strip()
    if not raw:
        raise FieldErrors.single(field, "required", "Email is required.")
    if len(raw) > 254:
        raise FieldErrors.single(field, "too_long", "Email must be at most 254 characters.")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldErrors.single(field, "invalid_email", f"Not a valid email address: {exc}") from exc
    email = f"{result.local_part}@{result.domain.lower()}"
    return email, email.lower()


def normalize_phone(value: str | None, region: str | None, field: str) -> str | None:
    """Parse to E.164 with ``region`` (a site's country) as the default; empty stays empty."""
    raw = (value or "").strip()
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException as exc:
        raise FieldErrors.single(field, "invalid_phone", f"Not a phone number: {raw}.") from exc
    if not phonenumbers.is_valid_number(number):
        raise FieldErrors.single(field, "invalid_phone", f"Not a valid phone number: {raw}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_language(value: str | None, field: str = "language") -> str:
    lang = (value or "en").strip().lower()
    if lang not in LANGUAGES:
        raise FieldErrors.single(
            field, "invalid_language", f"Language must be one of {', '.join(LANGUAGES)}."
        )
    return lang


def check_country(value: str, field: str = "country") -> str:
    code = (value or "").strip().upper()
    if len(code) != 2 or code not in phonenumbers.SUPPORTED_REGIONS:
        raise FieldErrors.single(field, "invalid_country", "Country must be an ISO 3166 two-letter code.")
    return code
