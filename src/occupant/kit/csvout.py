"""CSV writing that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

_FORMULA_START = frozenset("=+-@\t\r")


def neutralise(value: Any) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula: starting with =, +, -, @, tab or CR."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    if text and text[0] in _FORMULA_START:
        return "'" + text
    return text


def stream_csv(header: list[str], rows: Iterable[Iterable[Any]], *, bom: bool = True) -> Iterator[str]:
    """Yield CSV text in chunks of a few hundred rows; memory stays flat for any number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write("\ufeff")
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow(map(neutralise, row))
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
