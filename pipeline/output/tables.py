"""Results as tables: one plain description of a result's table, shown as text, markdown or a rich table.

Every stage result has ``table()`` (a `Table`: title, columns, rows of text cells, notes). `Shown` gives a
result a one-line ``repr``, a text table for ``print()`` in a terminal, and ``_repr_markdown_`` for Jupyter;
the CLI renders the same `Table` with rich (``pipeline.output.display``). No rich, no TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_runtime.text import printable


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


def _cell(value: str) -> str:
    return printable(value).replace("|", "\\|")


def markdown(table: Table) -> str:
    """A markdown table, for Jupyter and for job summaries."""
    out = [f"**{_cell(table.title)}**", ""]
    columns = table.columns if table.header else ["", ""]
    out += ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    out += ["|" + "|".join(":---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out += ["", *(_cell(note) + "  " for note in table.notes)]
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
