"""Results as tables: one plain description of a result's table, shown as text, markdown or a rich table.

Every stage result has ``table()`` (a `Table`: title, columns, rows of text cells, notes). `Shown` gives a
result a one-line ``repr``, a text table for ``print()`` in a terminal, and ``_repr_markdown_`` for Jupyter;
the CLI renders the same `Table` with rich (``pipeline.output.display``). No rich, no TensorFlow here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edge_runtime.text import printable

# What makes text markup in GitHub-flavoured markdown: emphasis, code, links and images, tables, headings,
# strikethrough, math, HTML. `_` only where it can open or close emphasis (not inside a word: model_int8).
_MARKUP = re.compile(r"[\\`*\[\]|#~$]|(?<![^\W_])_|_(?![^\W_])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BLOCK_START = re.compile(r"^(\s*\d*)([-+=.)])")  # a list item or a heading's underline, at a line's start


@dataclass
class Table:
    """A result's table: text cells, the first column left-aligned, the rest right-aligned."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines under the table
    header: bool = True  # False: a two-column list of facts (name, value)


def text(table: Table) -> str:
    """A fixed-width text table (control characters escaped)."""
    cells = [[printable(c) for c in row] for row in table.rows]
    head = [printable(c) for c in table.columns] if table.header else []
    widths = [max([len(c) for c in column] or [0]) for column in zip(*([head] if head else []), *cells, strict=False)]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        )

    out = [printable(table.title)]
    if head:
        out += [line(head), "  ".join("-" * w for w in widths)]
    out += [line(row).rstrip() for row in cells]
    return "\n".join([*out, *(printable(note) for note in table.notes)])


def md_text(value: object, line_start: bool = False) -> str:
    """Text from a folder or a user as markdown that shows it and never obeys it: no HTML, no emphasis, no link,
    no table cell or line of its own. `line_start`: the text begins a line (a note), where `-` or `1.` would
    begin a list."""
    text = _html(_MARKUP.sub(lambda m: "\\" + m.group(), printable(value)))
    return _BLOCK_START.sub(r"\1\\\2", text) if line_start else text


def md_prose(value: object) -> str:
    """`md_text` for a line of the project's own prose that embeds folder strings: its `code` spans stay code
    (inside one nothing renders as HTML or emphasis)."""
    return _MARKUP.sub(lambda m: m.group() if m.group() == "`" else "\\" + m.group(), _html(printable(value)))


def md_code(value: object, in_table: bool = False) -> str:
    """Text from a folder as a markdown code span, exactly (delimited by more backticks than it holds in a row)."""
    text = printable(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return fence + (padded.replace("|", "\\|") if in_table else padded) + fence


def _html(text: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in text)


def _cell(value: str) -> str:
    return md_text(value)


def markdown(table: Table) -> str:
    """A markdown table, for Jupyter and for job summaries."""
    out = [f"**{_cell(table.title)}**", ""]
    columns = table.columns if table.header else ["", ""]
    out += ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    out += ["|" + "|".join(":---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out += ["", *(md_text(note, line_start=True) + "  " for note in table.notes)]
    return "\n".join(out) + "\n"


class Shown:
    """Mixin: a short repr, a text table for print(), a markdown table for Jupyter."""

    def table(self) -> Table:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def summary(self) -> str:
        """One line: what the result is (its repr)."""
        return self.table().title

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {printable(self.summary())}>"

    def __str__(self) -> str:
        return text(self.table())

    def _repr_markdown_(self) -> str:
        return markdown(self.table())


def pct(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:.{places}%}"


def num(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)
