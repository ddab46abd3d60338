"""Reading uploaded CSV files: bytes in, a header and rows out, every problem said for a person.

What the reader accepts (see docs/BULK.md, "CSV"):

- encodings: UTF-8 with or without BOM; UTF-16 LE or BE with BOM (Excel's "Unicode text"); UTF-16
  without BOM when the NUL bytes of ASCII text give it away. Anything else is refused
  (``csv_encoding``) rather than guessed: a wrong guess would store mangled names.
- delimiters: comma, semicolon or tab, chosen from the header line (the one that splits it into the most
  known column names; ties go to the comma);
- line endings CRLF, LF or CR; quoted values with delimiters, doubled quotes and newlines;
- header names case-insensitive and trimmed; spaces and hyphens count as underscores and a trailing
  ``*`` (the "required" mark of the docs) is ignored, so "First Name", "first-name" and "first_name*"
  all name ``first_name``.

Rows: cells are trimmed; blank lines (every cell empty) are skipped; missing trailing cells are empty;
a value in a cell beyond the last named column is a row error (``too_many_cells``), empty extra cells
(spreadsheets pad rows) are ignored. A cell that ``csvout.neutralise`` protected against formula injection
(``'+44…``, ``'=…``) reads back as it was before, so an exported file can be edited and imported again.
Line numbers are true to the file: the line where the record starts, header = line 1 (after any blank
lines above it), blank lines counted.

Limits (``OCCUPANT_CSV_MAX_BYTES``, ``OCCUPANT_CSV_MAX_ROWS``) are checked before any value is looked at:
the size before decoding, the number of rows before any row is returned.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gc
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from occupant.kit.csvout import neutralise
from occupant.kit.errors import OccupantError
from occupant.kit.settings import get_settings

DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")
# csvout.neutralise puts a quote before these; the reader takes it off again.
_NEUTRALISED = re.compile(r"'[=+\-@\t\r]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SNIFF_CHARS = 64 * 1024
# Above the header, a line of delimiters is blank whichever the delimiter (an empty sheet's rows).
_BLANK_HEADER = re.compile(r"[\s,;\ufeff]*")
_MAX_COLUMNS = 1000  # a header longer than this is not one of our files; don't spend time on each cell
_LISTED_PROBLEMS = 10  # in the message; ``details`` has them all
_OTHER_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@dataclass(frozen=True, slots=True)
class Column:
    """One column a CSV kind accepts. ``name`` is the canonical, lowercase header."""

    name: str
    required: bool = False
    description: str = ""
    example: str = ""


@dataclass(frozen=True, slots=True)
class CsvSpec:
    """The columns of one CSV kind; ``key`` is the column whose repeats inside a file are reported."""

    columns: tuple[Column, ...]
    key: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names) or any(_normalise_header(n) != n for n in names):
            raise ValueError(f"column names must be unique and canonical: {names}")
        if self.key is not None and self.key not in names:
            raise ValueError(f"key {self.key!r} is not a column")


@dataclass(slots=True)
class CsvRow:
    """One data row: its line in the file, its values by column name, and the reader's row errors.

    ``values`` holds the columns present in the file (``CsvTable.columns``), trimmed; an optional column
    absent from the header is absent here too, so "not given" and "blank" stay distinguishable.
    ``errors`` are ``{field, code, message}`` (``too_many_cells`` has field ``""``).
    """

    line: int
    values: dict[str, str]
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class CsvTable:
    columns: list[str]
    rows: list[CsvRow]
    encoding: str
    delimiter: str


class CsvError(OccupantError):
    """The file as a whole cannot be read. ``code`` is one of the ``csv_*`` codes of docs/BULK.md.

    ``details``: for ``csv_columns`` a list of ``{column, code, message}`` (every header problem at once);
    otherwise a dict (``line``, or the size or row count and the limit).
    """

    status = 422

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.code = code


def read_csv(
    data: bytes, spec: CsvSpec, *, max_bytes: int | None = None, max_rows: int | None = None
) -> CsvTable:
    """Read an uploaded CSV file against ``spec``.

    Raises ``CsvError`` (422) for a problem with the file as a whole: ``csv_too_large``, ``csv_encoding``,
    ``csv_empty``, ``csv_columns``, ``csv_too_many_rows``, ``csv_malformed``. Problems of single rows are
    in each ``CsvRow.errors`` (``too_many_cells``, ``duplicate_in_file``); values are not validated here.
    ``max_bytes`` and ``max_rows`` default to the settings ``csv_max_bytes`` and ``csv_max_rows``.
    """
    if max_bytes is None:
        max_bytes = get_settings().csv_max_bytes
    if max_rows is None:
        max_rows = get_settings().csv_max_rows
    if len(data) > max_bytes:
        details = {"bytes": len(data), "max_bytes": max_bytes}
        raise CsvError("csv_too_large", _too_large_message(len(data), max_bytes), details)
    text, encoding = _decode(data)
    delimiter = _sniff_delimiter(text, spec)
    unneutralise = _NEUTRALISED.search(text) is not None
    reader = csv.reader(_lines(text), delimiter=delimiter, skipinitialspace=True, strict=True)
    del text  # the lines hold it now; a 50 MB file is kept once, not twice
    header, header_line = _read_header(reader)
    names = _check_header(header, header_line, spec)
    with _gc_paused():
        rows = _read_rows(reader, names, spec, max_rows, unneutralise=unneutralise)
    return CsvTable(columns=names, rows=rows, encoding=encoding, delimiter=delimiter)


def template_csv(spec: CsvSpec) -> bytes:
    """A template to fill in: the header and one example row, UTF-8 with BOM (for Excel), CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in spec.columns])
    writer.writerow([neutralise(c.example) for c in spec.columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# -- decoding ---------------------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8-sig", data[3:]
    elif data.startswith(codecs.BOM_UTF16_LE):
        encoding, body = "utf-16-le", data[2:]
    elif data.startswith(codecs.BOM_UTF16_BE):
        encoding, body = "utf-16-be", data[2:]
    else:
        encoding, body = _utf16_without_bom(data) or "utf-8", data
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        line = _line_of(body[: exc.start].decode(codec, errors="replace"))
        hint = "UTF-16" if codec.startswith("utf-16") else "UTF-8"
        raise CsvError(
            "csv_encoding",
            f'Line {line} is not valid {hint} text. Save the file as "CSV UTF-8" (in Excel: Save As, '
            "CSV UTF-8 (Comma delimited)) and upload it again.",
            {"line": line, "encoding": encoding},
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = _line_of(text[:nul])
        raise CsvError(
            "csv_encoding",
            f"Line {line} contains a NUL character, so this is not a UTF-8 or UTF-16 text file. Save it as "
            '"CSV UTF-8" and upload it again.',
            {"line": line, "encoding": encoding},
        )
    return text, encoding


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 by its NUL bytes: ASCII text in UTF-16 has a NUL in every other byte."""
    sample = data[:4096]
    if len(data) % 2 or len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > half * 0.3 and even < half * 0.05:
        return "utf-16-le"
    if even > half * 0.3 and odd < half * 0.05:
        return "utf-16-be"
    return None


def _lines(text: str) -> Iterable[str]:
    """The physical lines, each ending in CRLF, LF or CR, for the csv module.

    ``str.splitlines`` is faster and holds the text in its compact form (a StringIO holds four bytes a
    character), but it also breaks at a few other characters, which are ordinary ones in a CSV value.
    """
    if any(ch in text for ch in _OTHER_LINE_BREAKS):
        return io.StringIO(text, newline="")
    return text.splitlines(keepends=True)


def _line_of(prefix: str) -> int:
    """The line number (from 1) at the end of ``prefix``; CRLF, LF and CR each end a line."""
    return prefix.count("\n") + prefix.count("\r") - prefix.count("\r\n") + 1


# -- header -----------------------------------------------------------------------------------------------


def _normalise_header(name: str) -> str:
    cleaned = name.strip().lstrip("\ufeff").strip().rstrip("*").strip().lower()
    return _HEADER_SEPARATORS.sub("_", cleaned)


def _sniff_delimiter(text: str, spec: CsvSpec) -> str:
    """The delimiter that splits the first non-blank line into the most known names (ties: comma).

    With no known name at all, the one that splits it into the most cells, so the unknown columns are
    reported one by one.
    """
    lines = io.StringIO(text[:_SNIFF_CHARS], newline="")
    first = next((line for line in lines if not _BLANK_HEADER.fullmatch(line)), "")
    known = {c.name for c in spec.columns}
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            cells = next(csv.reader([first], delimiter=delimiter, skipinitialspace=True), [])
        except csv.Error:
            cells = first.split(delimiter)
        matches = sum(_normalise_header(c) in known for c in cells)
        score = (matches, 0 if matches else len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_header(reader: Any) -> tuple[list[str], int]:
    line = reader.line_num
    try:
        for record in reader:
            if not all(_BLANK_HEADER.fullmatch(c) for c in record):
                return record, line + 1
            line = reader.line_num
    except csv.Error as exc:
        raise _malformed(exc, line + 1, reader.line_num) from None
    raise CsvError(
        "csv_empty",
        "The file is empty. It needs a header line naming the columns, then one line per row; "
        "download the template to start from.",
        {"line": 1},
    )


def _check_header(header: list[str], line: int, spec: CsvSpec) -> list[str]:
    """The canonical column names, in file order; every header problem at once as ``csv_columns``."""
    cells = [c.strip() for c in header]
    while cells and not cells[-1]:  # spreadsheets pad the header with empty cells
        cells.pop()
    known = [c.name for c in spec.columns]
    if len(cells) > _MAX_COLUMNS:
        message = f"The header on line {line} has {len(cells):,} columns; at most {_MAX_COLUMNS:,} are read."
        raise CsvError(
            "csv_columns", message, [{"column": "", "code": "too_many_columns", "message": message}]
        )
    problems: list[dict[str, str]] = []

    def problem(column: str, code: str, message: str) -> None:
        problems.append({"column": column, "code": code, "message": message})

    names: list[str] = []
    positions: dict[str, list[int]] = {}
    for index, raw in enumerate(cells, 1):
        name = _normalise_header(raw)
        names.append(name)
        if not name:
            problem("", "empty_column_name", f"Column {_letter(index)} has no name; name it or delete it.")
        elif name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            shown = raw if len(raw) <= 60 else raw[:59] + "…"
            problem(raw, "unknown_column", f'Unknown column "{shown}" (column {_letter(index)}).{hint}')
        else:
            positions.setdefault(name, []).append(index)
    for name, where in positions.items():
        if len(where) > 1:
            columns = ", ".join(_letter(i) for i in where)
            problem(name, "duplicate_column", f'The column "{name}" appears more than once ({columns}).')
    for column in spec.columns:
        if column.required and column.name not in positions:
            problem(column.name, "missing_column", f'The required column "{column.name}" is missing.')
    if problems:
        listed = " ".join(p["message"] for p in problems[:_LISTED_PROBLEMS])
        if len(problems) > _LISTED_PROBLEMS:
            listed += f" And {len(problems) - _LISTED_PROBLEMS:,} more."
        if any(p["code"] == "unknown_column" for p in problems):
            listed += " The columns are: " + ", ".join(known) + "."
        raise CsvError("csv_columns", f"The header on line {line} needs fixing. {listed}", problems)
    return names


def _letter(index: int) -> str:
    """The spreadsheet name of column ``index`` (1 → A, 27 → AA)."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# -- rows -------------------------------------------------------------------------------------------------


def _read_rows(
    reader: Any, names: list[str], spec: CsvSpec, max_rows: int, *, unneutralise: bool
) -> list[CsvRow]:
    width = len(names)
    key = spec.key if spec.key in names else None
    delimiter = reader.dialect.delimiter
    first_line: dict[str, int] = {}
    rows: list[CsvRow] = []
    append = rows.append
    strip = str.strip
    previous = reader.line_num
    try:
        for record in reader:
            line = previous + 1
            previous = reader.line_num
            if not record:
                continue
            errors: list[dict[str, str]] = []
            if len(record) == width:
                values = dict(zip(names, map(strip, record), strict=True))
            else:
                values = _fit(record, names, errors, delimiter)
            if unneutralise:
                values = {name: _unneutralise(value) for name, value in values.items()}
            if key is not None and (value := values[key].lower()):
                first = first_line.setdefault(value, line)
                if first != line:
                    errors.append(_duplicate(key, first))
            elif not errors and not any(values.values()):
                continue
            if len(rows) == max_rows:
                raise _too_many_rows(max_rows + 1 + _count_rest(reader), max_rows)
            append(CsvRow(line, values, errors))
    except csv.Error as exc:
        raise _malformed(exc, previous + 1, reader.line_num) from None
    return rows


def _fit(record: list[str], names: list[str], errors: list[dict[str, str]], delimiter: str) -> dict[str, str]:
    """The values of a record with more or fewer cells than the header has names."""
    cells = [c.strip() for c in record]
    width = len(names)
    if len(cells) > width and any(cells[width:]):
        last = max(i for i, c in enumerate(cells) if c) + 1
        message = (
            f"This line has a value in column {_letter(last)}, but the header names only {width} columns; "
            f"a value containing a {_DELIMITER_NAMES[delimiter]} must be in double quotes."
        )
        errors.append({"field": "", "code": "too_many_cells", "message": message})
    cells.extend([""] * (width - len(cells)))
    return dict(zip(names, cells, strict=False))  # extra, empty cells dropped


def _unneutralise(value: str) -> str:
    if value[:1] == "'" and value[1:2] in _FORMULA_START:
        return value[1:].strip()
    return value


def _duplicate(key: str, first: int) -> dict[str, str]:
    label = key.replace("_", " ")
    return {"field": key, "code": "duplicate_in_file", "message": f"Same {label} as line {first}."}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Every row made is kept, so collecting while 100,000 of them are made only costs time (a third)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _count_rest(reader: Any) -> int:
    """How many more non-blank records the reader holds (for the too-many-rows message only)."""
    rest = 0
    try:
        for record in reader:
            rest += any(c.strip() for c in record)
    except csv.Error:
        pass
    return rest


def _too_many_rows(count: int, max_rows: int) -> CsvError:
    return CsvError(
        "csv_too_many_rows",
        f"The file has {count:,} rows; at most {max_rows:,} can be imported at once. "
        "Split it into smaller files.",
        {"rows": count, "max_rows": max_rows},
    )


def _too_large_message(size: int, max_bytes: int) -> str:
    shown, limit = _size(size), _size(max_bytes)
    if shown == limit:
        shown = f"larger than {limit}"
    return f"The file is {shown}; at most {limit} can be imported at once. Split it into smaller files."


def _size(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{n:,} bytes"


def _malformed(exc: csv.Error, start: int, current: int) -> CsvError:
    reason = str(exc)
    if "end of data" in reason:
        line, message = start, f'Line {start} opens a quoted value (with ") that is never closed.'
    elif "field limit" in reason:
        line = start
        message = (
            f"Line {start} has a value longer than {csv.field_size_limit():,} characters; "
            'usually a quote (") that is never closed.'
        )
    else:
        line = current
        message = (
            f'Line {current} has a quote (") in the wrong place: a quoted value must end at the delimiter; '
            'a quote inside a quoted value is written twice ("").'
        )
    return CsvError("csv_malformed", message + " Fix the line and upload the file again.", {"line": line})
