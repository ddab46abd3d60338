"""Reading uploaded CSV files: what an admin sees for the files spreadsheets really write.

Every case is a realistic file (Excel's "CSV UTF-8", European semicolon exports, "Unicode text",
hand-edited files) and the assertions are what the admin is told: the values, the line numbers of their
file, the codes and messages of each problem. Property tests then throw arbitrary bytes and arbitrary
rows at the reader: it answers a table or a ``CsvError``, never anything else, and every message says
something.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from occupant.kit import settings as settings_module
from occupant.kit.csvin import Column, CsvError, CsvSpec, CsvTable, read_csv, template_csv
from occupant.kit.csvout import neutralise
from occupant.kit.settings import Settings

CREATE = CsvSpec(
    (
        Column("first_name", required=True, example="Ann"),
        Column("last_name", required=True, example="Lee"),
        Column("email", required=True, example="ann.lee@example.com"),
        Column("job_title", example="Office manager"),
        Column("mobile", example="+447700900123"),
        Column("direct_line"),
        Column("language", example="en"),
        Column("employee_number"),
        Column("username"),
        Column("external_id"),
        Column("wifi", example="y"),
        Column("wifi_homesite", example="LON01"),
        Column("wifi_device_limit", example="3"),
        Column("role", example="user"),
        Column("invite_portal", example="y"),
        Column("invite_mobile_app", example="n"),
        Column("groups", example="Finance;London"),
    ),
    key="email",
)
DEACTIVATE = CsvSpec(
    (Column("email", required=True), Column("user_id"), Column("remove_from_group")), key="email"
)
GENERATOR = Path("/work/shared/bench/gen_users_csv.py")


def read(text: str, spec: CsvSpec = CREATE, **limits: int) -> CsvTable:
    return read_csv(text.encode(), spec, **limits)


def refused(data: bytes, spec: CsvSpec = CREATE, **limits: int) -> CsvError:
    with pytest.raises(CsvError) as caught:
        read_csv(data, spec, **limits)
    assert caught.value.status == 422
    return caught.value


def lines_and_values(table: CsvTable, *columns: str) -> list[tuple[int | str, ...]]:
    return [(row.line, *(row.values[c] for c in columns)) for row in table.rows]


# -- what spreadsheets write ------------------------------------------------------------------------------


def test_excel_csv_utf8_with_bom_crlf_and_quoted_values() -> None:
    text = (
        "\ufefffirst_name,last_name,email,job_title\r\n"
        'Zoë,"O\'Brien, Jr.",zoe@example.com,"Head of ""Fun"""\r\n'
        'Ann,Lee,ann@example.com,"Office manager\r\nLondon"\r\n'
        "Jürgen,Groß,juergen@example.com,\r\n"
    )
    table = read(text)
    assert (table.encoding, table.delimiter) == ("utf-8-sig", ",")
    assert table.columns == ["first_name", "last_name", "email", "job_title"]
    assert [row.values for row in table.rows] == [
        {
            "first_name": "Zoë",
            "last_name": "O'Brien, Jr.",
            "email": "zoe@example.com",
            "job_title": 'Head of "Fun"',
        },
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "job_title": "Office manager\r\nLondon",
        },
        {"first_name": "Jürgen", "last_name": "Groß", "email": "juergen@example.com", "job_title": ""},
    ]
    # The quoted newline makes Ann's record two lines long: Jürgen is on line 5 of the file.
    assert [row.line for row in table.rows] == [2, 3, 5]
    assert all(row.errors == [] for row in table.rows)


def test_european_excel_semicolon_file_keeps_commas_in_values() -> None:
    text = "First_Name;Last_Name;Email;Job_Title\nAnn;Lee;ann@example.com;Director, Sales\n"
    table = read(text)
    assert table.delimiter == ";"
    assert lines_and_values(table, "email", "job_title") == [(2, "ann@example.com", "Director, Sales")]


@pytest.mark.parametrize(
    ("encoding", "bom", "reported"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16-le"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16-be"),
        ("utf-16-le", b"", "utf-16-le"),
        ("utf-16-be", b"", "utf-16-be"),
    ],
)
def test_excel_unicode_text_utf16_tab_separated(encoding: str, bom: bytes, reported: str) -> None:
    text = (
        "first_name\tlast_name\temail\tgroups\r\n"
        "Łukasz\tNowak\tlukasz@example.com\tFinance;Warsaw\r\n"
        '"Chloé"\t"Dubois"\tchloe@example.com\t"Paris\tHQ"\r\n'
    )
    table = read_csv(bom + text.encode(encoding), CREATE)
    assert (table.encoding, table.delimiter) == (reported, "\t")
    assert lines_and_values(table, "first_name", "groups") == [
        (2, "Łukasz", "Finance;Warsaw"),
        (3, "Chloé", "Paris\tHQ"),
    ]


def test_old_mac_cr_line_endings() -> None:
    table = read("email,user_id\rann@example.com,7\r\rbob@example.com,\r", DEACTIVATE)
    assert lines_and_values(table, "email", "user_id") == [
        (2, "ann@example.com", "7"),
        (4, "bob@example.com", ""),
    ]


def test_headers_are_case_insensitive_trimmed_and_spaces_or_hyphens_are_underscores() -> None:
    table = read(" First Name ,LAST-NAME,Email*,Job  Title\r\nAnn,Lee,ann@example.com,Chef\r\n")
    assert table.columns == ["first_name", "last_name", "email", "job_title"]
    assert table.rows[0].values == {
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "job_title": "Chef",
    }


def test_blank_lines_are_skipped_but_line_numbers_stay_those_of_the_file() -> None:
    text = (
        "\r\n"  # a blank line above the header
        "email;remove_from_group\r\n"
        "ann@example.com;y\r\n"
        "\r\n"
        ";\r\n"  # a spreadsheet row with nothing in it
        "   ;  \r\n"
        '"bob@example.com";Y\r\n'
    )
    table = read(text, DEACTIVATE)
    assert lines_and_values(table, "email", "remove_from_group") == [
        (3, "ann@example.com", "y"),
        (7, "bob@example.com", "Y"),
    ]


def test_cells_are_trimmed_missing_cells_are_empty_and_absent_columns_absent() -> None:
    table = read("first_name,last_name,email,mobile\n  Ann  , Lee ,ann@example.com\n")
    assert table.rows[0].values == {
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "mobile": "",
    }
    assert "job_title" not in table.rows[0].values  # not given, so a kind does not clear it
    assert table.rows[0].errors == []


def test_a_value_beyond_the_last_column_is_a_row_error_but_spreadsheet_padding_is_not() -> None:
    text = (
        "first_name,last_name,email,job_title,,\n"  # Excel pads the header of a wider sheet
        "Ann,Lee,ann@example.com,Director, Sales\n"
        "Bob,Ray,bob@example.com,Chef,,\n"
    )
    ann, bob = read(text).rows
    assert ann.errors == [
        {
            "field": "",
            "code": "too_many_cells",
            "message": "This line has a value in column E, but the header names only 4 columns; "
            "a value containing a comma must be in double quotes.",
        }
    ]
    assert ann.values["job_title"] == "Director"
    assert bob.errors == []
    assert bob.values["job_title"] == "Chef"


def test_a_line_with_values_only_beyond_the_header_is_reported_not_skipped() -> None:
    (row,) = read("email,user_id\n,,stray@example.com\n", DEACTIVATE).rows
    assert (row.line, row.errors[0]["code"]) == (2, "too_many_cells")


def test_every_later_duplicate_email_names_the_first_line() -> None:
    text = "email\nann@example.com\nbob@example.com\n  ANN@Example.com \n\n\nann@example.com\n\n\n"
    table = read(text, DEACTIVATE)
    assert [(row.line, row.errors) for row in table.rows] == [
        (2, []),
        (3, []),
        (4, [{"field": "email", "code": "duplicate_in_file", "message": "Same email as line 2."}]),
        (7, [{"field": "email", "code": "duplicate_in_file", "message": "Same email as line 2."}]),
    ]


def test_blank_required_values_are_left_to_the_kind() -> None:
    table = read("email,user_id\n,17\n,18\n", DEACTIVATE)
    assert [(row.line, row.values["email"], row.errors) for row in table.rows] == [(2, "", []), (3, "", [])]


def test_a_cell_protected_against_formulas_reads_back_as_it_was() -> None:
    """An exported file (csvout neutralises cells) can be edited and uploaded again."""
    exported = io.StringIO()
    csv.writer(exported).writerows(
        [
            ["first_name", "last_name", "email", "mobile"],
            [neutralise("=Ann"), "Lee", "ann@example.com", neutralise("+447700900123")],
        ]
    )
    assert "'+447700900123" in exported.getvalue()
    (row,) = read(exported.getvalue()).rows
    assert (row.values["first_name"], row.values["mobile"]) == ("=Ann", "+447700900123")
    assert (
        read("first_name,last_name,email\nO'Neil,D'Arcy,o@example.com\n").rows[0].values["last_name"]
        == "D'Arcy"
    )


# -- the file as a whole --------------------------------------------------------------------------------


def test_every_header_problem_is_reported_at_once() -> None:
    error = refused(b"Fist Name,last_name,mobile,,Mobile,notes\nAnn,Lee,1,,2,x\n")
    assert error.code == "csv_columns"
    assert error.details == [
        {
            "column": "Fist Name",
            "code": "unknown_column",
            "message": 'Unknown column "Fist Name" (column A). Did you mean "first_name"?',
        },
        {"column": "", "code": "empty_column_name", "message": "Column D has no name; name it or delete it."},
        {"column": "notes", "code": "unknown_column", "message": 'Unknown column "notes" (column F).'},
        {
            "column": "mobile",
            "code": "duplicate_column",
            "message": 'The column "mobile" appears more than once (C, E).',
        },
        {
            "column": "first_name",
            "code": "missing_column",
            "message": 'The required column "first_name" is missing.',
        },
        {"column": "email", "code": "missing_column", "message": 'The required column "email" is missing.'},
    ]
    assert error.message.startswith('The header on line 1 needs fixing. Unknown column "Fist Name"')
    assert "The columns are: first_name, last_name, email, job_title," in error.message
    assert error.as_dict()["code"] == "csv_columns"


def test_a_near_miss_header_gets_a_suggestion() -> None:
    error = refused(b"First Name,Last Name,E-mail\nAnn,Lee,ann@example.com\n")
    assert [(d["column"], d["code"], d["message"]) for d in error.details] == [
        ("E-mail", "unknown_column", 'Unknown column "E-mail" (column C). Did you mean "email"?'),
        ("email", "missing_column", 'The required column "email" is missing.'),
    ]


def test_a_semicolon_header_of_unknown_names_is_reported_name_by_name() -> None:
    error = refused(b"Vorname;Nachname;E-Mail\nAnna;Lee;a@example.com\n")
    assert [d["column"] for d in error.details if d["code"] == "unknown_column"] == [
        "Vorname",
        "Nachname",
        "E-Mail",
    ]


@pytest.mark.parametrize(
    "data", [b"", codecs.BOM_UTF8, b"\r\n\r\n", b" , ,\n;;\n", "\ufeff".encode("utf-16")]
)
def test_a_file_without_a_header_is_empty(data: bytes) -> None:
    error = refused(data)
    assert error.code == "csv_empty"
    assert error.message.startswith("The file is empty. It needs a header line naming the columns")


def test_a_file_with_only_the_header_has_no_rows() -> None:
    assert read("email\r\n", DEACTIVATE).rows == []


def test_too_large_is_refused_before_decoding_anything() -> None:
    error = refused(b"\xff" * 1536, max_bytes=1000)
    assert (error.code, error.details) == ("csv_too_large", {"bytes": 1536, "max_bytes": 1000})
    assert error.message == (
        "The file is 1.5 KB; at most 1,000 bytes can be imported at once. Split it into smaller files."
    )


def test_the_default_size_limit_is_50_mb() -> None:
    error = refused(b"x" * (50 * 1024 * 1024 + 1))
    assert error.code == "csv_too_large"
    assert error.message.startswith("The file is larger than 50 MB; at most 50 MB can be imported at once.")


def test_the_default_row_limit_is_100000_rows_not_counting_blank_lines() -> None:
    rows = "".join(f"user{n}@example.com\n" for n in range(100_000))
    assert len(read("email\n" + rows + "\n\n", DEACTIVATE).rows) == 100_000
    error = refused(("email\n" + rows + "last@example.com\n").encode(), DEACTIVATE)
    assert (error.code, error.details) == ("csv_too_many_rows", {"rows": 100_001, "max_rows": 100_000})
    assert error.message == (
        "The file has 100,001 rows; at most 100,000 can be imported at once. Split it into smaller files."
    )


def test_too_many_rows_is_reported_even_when_rows_have_problems() -> None:
    text = "email\na@example.com\na@example.com\n\n,,,x\nb@example.com\n"
    error = refused(text.encode(), DEACTIVATE, max_rows=2)
    assert (error.code, error.details) == ("csv_too_many_rows", {"rows": 4, "max_rows": 2})


@pytest.fixture
def env_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set OCCUPANT_* variables for read_csv's defaults (get_settings is cached)."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings_module.get_settings.cache_clear()

    yield apply
    settings_module.get_settings.cache_clear()


def test_limits_come_from_the_environment(env_limits: Callable[..., None]) -> None:
    env_limits(OCCUPANT_CSV_MAX_ROWS="2", OCCUPANT_CSV_MAX_BYTES="100")
    assert (
        refused(b"email\na@example.com\nb@example.com\nc@example.com\n", DEACTIVATE).code
        == "csv_too_many_rows"
    )
    assert refused(b"email\n" + b"a" * 100, DEACTIVATE).code == "csv_too_large"
    assert len(read("email\na@example.com\nb@example.com\n", DEACTIVATE).rows) == 2


@pytest.mark.parametrize("name", ["OCCUPANT_CSV_MAX_ROWS", "OCCUPANT_CSV_MAX_BYTES"])
def test_limits_must_be_positive(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ValidationError):
        Settings()


def test_an_ansi_excel_file_is_refused_naming_the_line() -> None:
    data = "first_name,last_name,email\nAnn,Lee,ann@example.com\nZoë,Brontë,zoe@example.com\n".encode(
        "cp1252"
    )
    error = refused(data)
    assert (error.code, error.details) == ("csv_encoding", {"line": 3, "encoding": "utf-8"})
    assert error.message.startswith('Line 3 is not valid UTF-8 text. Save the file as "CSV UTF-8"')


def test_broken_utf16_is_refused_naming_the_line() -> None:
    data = codecs.BOM_UTF16_LE + "email\r\na@example.com\r\n".encode("utf-16-le") + b"\x00\xd8A\x00"
    error = refused(data, DEACTIVATE)
    assert (error.code, error.details) == ("csv_encoding", {"line": 3, "encoding": "utf-16-le"})


def test_a_binary_file_is_refused() -> None:
    error = refused(b"email\nann@example.com\n\x00\x01\x02PK\x03\x04", DEACTIVATE)
    assert (error.code, error.details["line"]) == ("csv_encoding", 3)
    assert "NUL character" in error.message


def test_a_quote_never_closed_names_the_line_where_it_opens() -> None:
    text = 'email,user_id\r\na@example.com,1\r\n"b@example.com,2\r\nc@example.com,3\r\n'
    error = refused(text.encode(), DEACTIVATE)
    assert (error.code, error.details) == ("csv_malformed", {"line": 3})
    assert error.message == (
        'Line 3 opens a quoted value (with ") that is never closed. Fix the line and upload the file again.'
    )


def test_a_misplaced_quote_names_its_line() -> None:
    error = refused(
        b'first_name,last_name,email\nAnn,Lee,a@example.com\n"Dwayne" Rock,Johnson,d@example.com\n'
    )
    assert (error.code, error.details) == ("csv_malformed", {"line": 3})
    assert error.message.startswith('Line 3 has a quote (") in the wrong place')


def test_the_delimiter_is_the_one_naming_the_most_columns_ties_go_to_the_comma() -> None:
    assert read("email\na;b@example.com\n", DEACTIVATE).delimiter == ","
    table = read("email;user_id\na@example.com;1,2\n", DEACTIVATE)
    assert (table.delimiter, table.rows[0].values["user_id"]) == (";", "1,2")


# -- the template -----------------------------------------------------------------------------------------


def test_template_is_excel_ready_and_reads_back_as_its_example() -> None:
    data = template_csv(CREATE)
    assert data.startswith(codecs.BOM_UTF8)
    header, example, end = data[3:].decode().split("\r\n")
    assert header.startswith("first_name,last_name,email,job_title,mobile,direct_line,language,")
    assert example.startswith("Ann,Lee,ann.lee@example.com,Office manager,'+447700900123,,en,")
    assert end == ""
    (row,) = read_csv(data, CREATE).rows
    assert row.values == {c.name: c.example for c in CREATE.columns}


# -- the benchmark file ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users_100k(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The benchmark's 100,000 users, generated once per generator and Faker version (pytest's cache)."""
    if not GENERATOR.exists():
        pytest.skip("bench generator not available")
    stamp = hashlib.sha256(GENERATOR.read_bytes() + version("faker").encode()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    folder = cache.mkdir("csvin") if cache is not None else tmp_path_factory.mktemp("csvin")
    path = folder / f"users-100000-{stamp}.csv"
    if not path.exists():
        partial = folder / f"{path.name}.{os.getpid()}"
        subprocess.run([sys.executable, str(GENERATOR), "100000", str(partial)], check=True)
        partial.replace(path)
    return path.read_bytes()


def test_the_100k_benchmark_file_reads_whole_and_fast(users_100k: bytes) -> None:
    started = time.perf_counter()
    table = read_csv(users_100k, CREATE)
    elapsed = time.perf_counter() - started
    expected = list(csv.reader(io.StringIO(users_100k.decode(), newline="")))
    assert table.columns == expected[0]
    assert len(table.rows) == 100_000
    trimmed = [dict(zip(expected[0], map(str.strip, r), strict=True)) for r in expected[1:]]
    assert [row.values for row in table.rows] == trimmed  # (Faker ends a few job titles with a space)
    assert [row.line for row in table.rows] == list(range(2, 100_002))
    assert not any(row.errors for row in table.rows)  # the generator's emails are unique
    assert {row.values["language"] for row in table.rows} == {"en", "fr", "de", "es", "nl"}
    assert elapsed < 5  # ~0.5 s; the bound only catches something gone quadratic


# -- properties -------------------------------------------------------------------------------------------

ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-sig": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}
# Anything but lone surrogates (no encoding writes them) and NUL (refused as binary).
cell_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
tricky_cell = st.one_of(
    cell_text,
    st.sampled_from(
        ["", " ", '"', '""', ",", ";", "\t", "\r\n", "\r", "\n", "'+44", "=1+1", "a\u2028b", "\x0c"]
    ),
)


def assert_answer_is_clear(data: bytes, spec: CsvSpec, **limits: int) -> None:
    """A table or a CsvError; a code and a message for every problem; lines in file order."""
    try:
        table = read_csv(data, spec, **limits)
    except CsvError as error:
        event(error.code)
        assert error.code.startswith("csv_") and error.message.strip() and error.status == 422
        if error.code == "csv_columns":
            assert error.details and all(d["code"] and d["message"] for d in error.details)
        else:
            assert isinstance(error.details, dict)
        return
    event("table with row errors" if any(row.errors for row in table.rows) else "table")
    lines = [row.line for row in table.rows]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)
    for row in table.rows:
        assert set(row.values) == set(table.columns)
        assert all(e["code"] and e["message"] and "field" in e for e in row.errors)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(
        [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"email,user_id\n"]
    ),
    data=st.binary(max_size=300),
    max_rows=st.integers(1, 5),
)
def test_arbitrary_bytes_get_a_table_or_a_clear_refusal(prefix: bytes, data: bytes, max_rows: int) -> None:
    assert_answer_is_clear(prefix + data, DEACTIVATE, max_rows=max_rows, max_bytes=250)


@settings(max_examples=150, deadline=None)
@given(
    email=st.sampled_from(["email", " Email ", "EMAIL*", None]),
    others=st.lists(
        st.sampled_from(["user_id", "remove_from_group", "User ID", "junk", "", "email"]), max_size=3
    ),
    rows=st.lists(st.lists(tricky_cell, max_size=5), max_size=6),
    delimiter=st.sampled_from([",", ";", "\t"]),
    joiner=st.sampled_from(["\r\n", "\n", "\r"]),
    quote_sometimes=st.booleans(),
    encoding=st.sampled_from(sorted(ENCODINGS)),
)
def test_arbitrary_rows_of_arbitrary_text_get_a_clear_answer(
    email: str | None,
    others: list[str],
    rows: list[list[str]],
    delimiter: str,
    joiner: str,
    quote_sometimes: bool,
    encoding: str,
) -> None:
    """Hand-made lines: no escaping, stray quotes, delimiters in values, any line ending."""
    header = others if email is None else [email, *others]
    lines = [delimiter.join(header)]
    for n, row in enumerate(rows):
        cells = [f'"{c}"' if quote_sometimes and n % 2 else c for c in row]
        lines.append(delimiter.join(cells))
    assert_answer_is_clear(ENCODINGS[encoding](joiner.join(lines)), DEACTIVATE, max_rows=4)


def header_variant(name: str, draw: st.DrawFn) -> str:
    spaced = name.replace("_", draw(st.sampled_from(["_", " ", "-"])))
    cased = draw(st.sampled_from([str.lower, str.upper, str.title]))(spaced)
    return draw(st.sampled_from(["", " "])) + cased + draw(st.sampled_from(["", "*", " "]))


@st.composite
def written_file(draw: st.DrawFn) -> tuple[bytes, list[str], list[tuple[int, dict[str, str]]]]:
    """A file as the csv module writes it, with the rows the reader must give back (and their lines)."""
    names = draw(
        st.lists(st.sampled_from([c.name for c in CREATE.columns]), min_size=2, max_size=5, unique=True)
    )
    names = [*dict.fromkeys(["first_name", "last_name", "email", *names])]
    names = draw(st.permutations(names))
    rows = draw(st.lists(st.lists(tricky_cell, min_size=len(names), max_size=len(names)), max_size=8))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    # With an LF terminator the csv module leaves a bare CR unquoted, which no reader can tell from a
    # line end (spreadsheets quote it): then every value is quoted.
    quote_all = draw(st.booleans()) or terminator == "\n"

    def written(cells: list[str]) -> str:
        buffer = io.StringIO()
        quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        csv.writer(buffer, delimiter=delimiter, lineterminator=terminator, quoting=quoting).writerow(cells)
        return buffer.getvalue()

    text = written([header_variant(n, draw) for n in names])
    expected: list[tuple[int, dict[str, str]]] = []
    line = 2
    for cells in rows:
        record = written(cells)
        values = {n: unneutralised(c.strip()) for n, c in zip(names, cells, strict=True)}
        if any(values.values()):
            expected.append((line, values))
        text += record
        line += record.count("\n") + record.count("\r") - record.count("\r\n")
    return ENCODINGS[draw(st.sampled_from(sorted(ENCODINGS)))](text), names, expected


def unneutralised(value: str) -> str:
    return value[1:].strip() if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r") else value


@settings(max_examples=150, deadline=None)
@given(written_file())
def test_what_the_csv_module_writes_reads_back_equal(
    case: tuple[bytes, list[str], list[tuple[int, dict[str, str]]]],
) -> None:
    data, names, expected = case
    table = read_csv(data, CsvSpec(CREATE.columns))  # no key: duplicates are another test's business
    assert table.columns == names
    assert [(row.line, row.values) for row in table.rows] == expected
    assert all(row.errors == [] for row in table.rows)
