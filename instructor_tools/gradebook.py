"""The gradebook: a CSV file safe to open in a spreadsheet, and the tables printed on screen."""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from instructor_tools.notebooks import LAB_NOTEBOOKS

#: The gradebook's columns before the lab's figures (and ``path`` after them).
GRADEBOOK_COLUMNS = [
    "student",
    "lab",
    "status",
    "executed_in_order",
    "error_cells",
    "unrun_cells",
    "checks_passed",
    "checks_total",
    "graded_from",
    "needs_a_look",
]

#: Characters a CSV cell may hold; longer text is cut (Excel shows at most 32,767 in a cell).
CSV_CELL_LIMIT = 32_000

#: A CSV cell starting with one of these can be run as a formula by a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")

#: A number as a spreadsheet reads it. Possessive quantifiers (``++``) never give back what they matched,
#: so a long string of digits that is not a number fails in linear time instead of backtracking.
_PLAIN_NUMBER = re.compile(r"[+-]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][+-]?+\d++)?+")


def shown_value(value) -> str:
    """A gradebook value as text: lists and dicts as JSON, nothing as an empty string."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


#: Where a spreadsheet may split a cell into several (the separator chosen on import: comma, semicolon,
#: tab, pipe; line breaks end a row). Each piece is neutralised as if it were a cell of its own.
SEPARATORS = ",;\t|\r\n"
_PIECES = re.compile(r"([,;\t|\r\n])")


def csv_safe(text: str) -> str:
    """``text`` as it can go into a CSV cell: a ``'`` before anything a spreadsheet could run as a formula.

    OWASP's rule for CSV injection: a cell starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (or a line break) is prefixed. A
    spreadsheet told to split on ``;`` or tabs (or one that ignores the CSV's
    quotes) turns what follows a separator into a cell of its own: so every
    piece after a separator (and after spaces) that starts with ``=``, ``+``,
    ``-`` or ``@`` gets the ``'`` too. Plain numbers (``-0.5``, ``+3``) are
    left as they are: a spreadsheet reads them as numbers, not formulas. Linear time.
    """
    pieces = _PIECES.split(text)
    for i in range(0, len(pieces), 2):  # the even pieces are between separators
        piece = pieces[i]
        body = piece.lstrip(" ")
        if body.startswith(FORMULA_STARTS[:4]) and not _PLAIN_NUMBER.fullmatch(body.rstrip(" ")):
            pieces[i] = piece[: len(piece) - len(body)] + "'" + body
    safe = "".join(pieces)
    if safe.startswith(FORMULA_STARTS[4:]):
        safe = "'" + safe
    return safe


def csv_cell(value) -> str:
    """A gradebook value as one CSV cell: text, UTF-8, no formula, at most ``CSV_CELL_LIMIT`` characters."""
    text = utf8_text(shown_value(value))
    if len(text) > CSV_CELL_LIMIT:
        text = text[: CSV_CELL_LIMIT - 40] + f"... (cut: {len(text):,} characters)"
    return csv_safe(text)


def utf8_text(text: str) -> str:
    """``text`` as it can be written to a UTF-8 file or terminal: undecodable bytes of a file name as ``\\xff``.

    Python hands bytes of a file name that are not UTF-8 over as lone surrogates,
    and JSON may hold some (``"\\ud800"``); no UTF-8 file accepts them. The
    text stays recognisable and its row is written.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an undecodable byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and formatting characters shown as escapes (``\\x1b``).

    A file name or a figure is the submission's choice: an ANSI escape in it could
    hide or rewrite what is printed after it, a right-to-left mark could reorder a line.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in utf8_text(text))


def _escape(char: str) -> str:
    code = ord(char)
    if unicodedata.category(char) == "Zs":  # a space of another width: harmless, shown as a space
        return " "
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def gradebook_columns(rows: list[dict]) -> list[str]:
    """The fixed columns, the figures of each lab graded (as its reference records them), then ``path``."""
    figures = list(dict.fromkeys(name for row in rows for name in row["figures"]))
    return GRADEBOOK_COLUMNS + [name for name in figures if name not in GRADEBOOK_COLUMNS + ["path"]] + ["path"]


def write_gradebook(rows: list[dict], out: Path) -> None:
    """Write the rows as CSV, every cell that could be read as a formula neutralised (``csv_safe``).

    Atomically: the rows go to a temporary file beside ``out``, which then
    replaces it in one step, so ``out`` is never seen half-written (a crash or a
    full disk leaves the previous gradebook, or none).
    """
    out = Path(out)
    columns = gradebook_columns(rows)
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)  # every cell quoted: no separator in one splits it
            writer.writerow([csv_safe(column) for column in columns])
            for row in rows:
                values = {**row["figures"], **{k: v for k, v in row.items() if k not in ("figures", "other_figures")}}
                writer.writerow([csv_cell(values.get(column)) for column in columns])
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it (mkstemp makes it private)
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        raise


def gradebook_text(rows: list[dict], width: int = 32) -> str:
    """The rows as plain-text tables: one per lab, with that lab's figures as columns, then unknown files.

    Values after the status longer than ``width`` characters are cut (the CSV has them whole).
    """
    blocks = []
    for lab in [*LAB_NOTEBOOKS, None]:
        group = [row for row in rows if row["lab"] == lab]
        if not group:
            continue
        shown = [
            {
                "student": row["student"],
                "status": row["status"],
                "in order": row["executed_in_order"],
                "errors": row["error_cells"],
                "never run": row["unrun_cells"],
                "checks": "" if row["checks_total"] is None else f"{row['checks_passed']}/{row['checks_total']}",
                "graded from": row["graded_from"],
                "needs a look": row.get("needs_a_look", ""),
                **row["figures"],
            }
            for row in group
        ]
        columns = list(dict.fromkeys(name for row in shown for name in row))  # figure names: the reference's
        cells = [[printable(shown_value(row.get(column))) for column in columns] for row in shown]
        cells = [
            line[:2] + [value if len(value) <= width else value[: width - 3] + "..." for value in line[2:]]
            for line in cells
        ]  # student and status are never cut
        widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
        title = f"Lab {lab} ({LAB_NOTEBOOKS[lab]})" if lab else "Not a notebook of a known lab"
        lines = [f"{title}: {len(group)} file(s)"]
        for line in [columns, ["-" * w for w in widths], *cells]:
            lines.append("  ".join(value.ljust(w) for value, w in zip(line, widths, strict=True)).rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
