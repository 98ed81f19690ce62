"""Tables on stdout: a rich table on a terminal; elsewhere (a pipe, a file) plain aligned
columns that are never cut to the terminal's width (rich squeezes cells to fit 80 columns
and ends them with "…")."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_table(console: Console, title: str, columns: list[str], rows: list[list[str]],
                justify: dict[str, str] | None = None) -> None:
    """``rows`` hold rich markup; a cell with newlines is several lines on a terminal and
    joined with "; " in plain output."""
    justify = justify or {}
    if console.is_terminal:
        t = Table(title=title)
        for c in columns:
            t.add_column(c, justify=justify.get(c, "left"))
        for r in rows:
            t.add_row(*r)
        console.print(t)
        return
    plain = [[Text.from_markup(cell).plain.replace("\n", "; ") for cell in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in plain]) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        out = [(c.rjust(w) if justify.get(columns[i]) == "right" else c.ljust(w))
               for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    text = "\n".join([title, line(columns), *(line(r) for r in plain)])
    console.file.write(text + "\n")
    console.file.flush()
