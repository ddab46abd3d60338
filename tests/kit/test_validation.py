"""The fast ways of kit.validation give the libraries' answers: same normalised value, same refusals.

Inputs are generated around what each fast path decides (E.164 numbers near every region's example
numbers; dot-atom addresses on valid, odd and invalid domains), so that a rule the fast path gets wrong
shows as a difference from phonenumbers or email-validator.
"""

from __future__ import annotations

import random
import string

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from occupant.kit import validation
from occupant.kit.errors import FieldErrors
from occupant.kit.validation import normalize_email, normalize_phone


def library_phone(raw: str) -> str | None:
    """E.164 of ``raw`` per phonenumbers alone, or None when it refuses the number."""
    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _example(country_code: int, region: str, rng: random.Random) -> str | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    examples = [
        desc.example_number
        for name in ("general_desc", *validation._NUMBER_TYPES)
        if (desc := getattr(metadata, name, None)) is not None and desc.example_number
    ]
    return rng.choice(examples) if examples else None


def numbers_near_examples(count: int, seed: int) -> list[str]:
    """E.164 strings for every country code: real example numbers, some digits changed, one added or
    dropped; and random digits."""
    rng = random.Random(seed)
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE)
    found = []
    for _ in range(count):
        country_code = rng.choice(codes)
        example = _example(country_code, rng.choice(COUNTRY_CODE_TO_REGION_CODE[country_code]), rng)
        if example and rng.random() < 0.75:
            digits = list(example)
            for _ in range(rng.randint(0, 2)):
                digits[rng.randrange(len(digits))] = rng.choice(string.digits)
            if rng.random() < 0.1:
                digits.append(rng.choice(string.digits))
            if rng.random() < 0.1 and len(digits) > 3:
                digits.pop()
            nsn = "".join(digits)
        else:
            nsn = "".join(rng.choice(string.digits) for _ in range(rng.randint(4, 14)))
        found.append(f"+{country_code}{nsn}")
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_e164_numbers_get_the_librarys_answer(seed: int) -> None:
    numbers = numbers_near_examples(12_000, seed)
    decided = valid = 0
    for raw in numbers:
        expected = library_phone(raw)
        if validation._valid_e164(raw):
            decided += 1
            assert expected == raw, raw  # the fast path only ever accepts what the library accepts
        try:
            got = normalize_phone(raw, "GB", "mobile")
        except FieldErrors as exc:
            assert expected is None, raw
            assert exc.errors[0]["code"] == "invalid_phone"
        else:
            valid += 1
            assert got == expected, raw
    # The generator makes both kinds, and the fast path decides nearly every valid one.
    assert valid > len(numbers) // 4 and decided > valid * 0.95


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 7911 123456", "FR", "+447911123456"),  # spaces: the library's way
        ("07911 123456", "GB", "+447911123456"),  # national format, the site's country
        ("+4407911123456", "GB", "+447911123456"),  # a national prefix after the country code
        ("+390612345678", "GB", "+390612345678"),  # Italy keeps its leading zero
        ("+12015550123", "GB", "+12015550123"),  # +1: the region is found among many
    ],
)
def test_other_shapes_are_the_librarys(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region, "mobile") == expected


def test_an_invalid_number_has_the_librarys_message() -> None:
    with pytest.raises(FieldErrors) as err:
        normalize_phone("+4479", "GB", "mobile")
    assert err.value.errors == [
        {"field": "mobile", "code": "invalid_phone", "message": "Not a valid phone number: +4479."}
    ]


def library_email(raw: str) -> str | None:
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{result.domain.lower()}"


DOMAINS = [
    "example.com",
    "Example.COM",
    "sub.example.co.uk",
    "münchen.de",
    "xn--mnchen-3ya.de",
    "localhost",
    "a..b.com",
    "-bad.com",
    "ok-.com",
    "my.local",
    "x.invalid",
    "example",
    "[192.0.2.1]",
    "exa_mple.com",
    "a" * 64 + ".com",
]
LOCAL_CHARS = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-." + '"(),:;<>@[\\] éü'


@settings(max_examples=3000, deadline=None)
@given(local=st.text(alphabet=LOCAL_CHARS, max_size=70), domain=st.sampled_from(DOMAINS))
def test_emails_get_email_validators_answer(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    expected = library_email(raw) if len(raw) <= 254 and raw.strip() == raw else None
    try:
        email, key = normalize_email(raw)
    except FieldErrors:
        if raw.strip() == raw and len(raw) <= 254:
            assert expected is None, raw
        return
    if raw.strip() == raw:
        assert email == expected, raw
        assert key == email.lower()


def test_an_address_keeps_its_local_part_and_lowers_its_domain() -> None:
    assert normalize_email("  Ada.Lovelace+wifi@Example.COM ") == (
        "Ada.Lovelace+wifi@example.com",
        "ada.lovelace+wifi@example.com",
    )
    with pytest.raises(FieldErrors) as err:
        normalize_email("ada@localhost")
    assert err.value.errors[0]["code"] == "invalid_email"
