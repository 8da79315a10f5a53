"""Tables as a reader sees them: formatted numbers, readable headers, long tables folded.

Why one module: a raw DataFrame dump shows an index column, 8-digit floats, NaN-filled
pivots and "124 rows × 8 columns" with a "…" row. Every table of the book goes through
:func:`show` instead: numbers to 3 significant digits, p and q as "< 0.001" when tiny, a
bootstrap interval as one "[low, high]" cell, no index, at most ``max_rows`` rows on the
page and the full table one click away in a collapsed block.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

MAX_ROWS = 15
MISSING = "–"

# Headers a reader understands, for the column names the lib tables use.
COLUMN_NAMES: dict[str, str] = {
    "model": "network", "label": "network", "layer": "layer", "block": "block", "depth": "layer #",
    "rel_depth": "relative depth", "reference": "reference", "condition": "condition",
    "rho": "ρ", "diff": "difference", "rho_a": "ρ group A", "rho_b": "ρ group B", "ci": "95 % CI",
    "p": "p", "q": "q (FDR)", "mean": "mean ρ", "sem": "SEM", "n_layers": "layers",
    "n_significant": "layers with q < α", "n_stimuli": "stimuli", "matched_on": "within",
    "contrast": "contrast", "roi": "ROI", "family": "ROI family", "nc_lower": "noise ceiling (lower)",
    "nc_upper": "noise ceiling (upper)", "n_subjects": "subjects", "weights": "weights",
    "arch": "architecture", "training": "training", "reason": "note",
}
P_COLUMNS = ("p", "q", "p_quadratic_term")


def fmt_number(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits; whole numbers stay whole; NaN/None as '–'."""
    if x is None or isinstance(x, str):
        return MISSING if x is None else x
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return (f"{int(x):,}" if abs(int(x)) >= 10_000 else str(int(x))).replace("-", "−")
    x = float(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x.is_integer() and abs(x) < 10 ** 6:  # counts that pandas made floats
        return fmt_number(int(x), digits)
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(x)))), 0)
    text = f"{x:.{decimals}f}"
    return text.replace("-", "−")


def fmt_p(p, floor: float = 0.001) -> str:
    """A p (or q) value: '< 0.001' below ``floor``, else 2 significant digits."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return MISSING
    return f"< {floor:g}" if p < floor else fmt_number(p, 2)


def fmt_ci(low, high, digits: int = 3) -> str:
    """A confidence interval as one cell, '[low, high]'."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return MISSING
    return f"[{fmt_number(low, digits)}, {fmt_number(high, digits)}]"


def fmt_pm(mean, sem, digits: int = 3) -> str:
    """'mean ± SEM' as one cell (the SEM alone when the mean is missing is meaningless: '–')."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    if sem is None or (isinstance(sem, float) and math.isnan(sem)):
        return fmt_number(mean, digits)
    return f"{fmt_number(mean, digits)} ± {fmt_number(sem, 2)}"


def format_table(table: pd.DataFrame, columns: Sequence[str] | Mapping[str, str] | None = None, *,
                 digits: int = 3, p_columns: Sequence[str] = P_COLUMNS, ci: tuple[str, str] = ("ci_low", "ci_high"),
                 ) -> pd.DataFrame:
    """Strings a reader can read: the selected ``columns`` (a list, or {column: header}),
    numbers formatted, the CI pair merged into one '95 % CI' cell, headers renamed."""
    t = table.reset_index(drop=True)
    if columns is None:
        columns = list(t.columns)
    headers = dict(columns) if isinstance(columns, Mapping) else {c: COLUMN_NAMES.get(c, c) for c in columns}
    missing = [c for c in headers if c not in t.columns and c != "ci"]
    if missing:
        raise KeyError(f"format_table: no column(s) {missing} in the table (it has {list(t.columns)})")
    out = {}
    lo, hi = ci
    for col, header in headers.items():
        if col in ("ci", lo, hi):
            merged_elsewhere = (col == hi and lo in headers) or (col != "ci" and "ci" in headers)
            if not merged_elsewhere:
                out[headers.get("ci", COLUMN_NAMES["ci"])] = [fmt_ci(a, b, digits) for a, b in zip(t[lo], t[hi])]
            continue
        values = t[col]
        if col in p_columns:
            out[header] = [fmt_p(v) for v in values]
        else:
            out[header] = [v if isinstance(v, str) else fmt_number(v, digits) for v in values]
    return pd.DataFrame(out)


_NUMERIC = re.compile(r"^[−\-–<\[]?\s*[\d.,−\-–\s±\[\]]*$")


def _cell(value) -> str:
    """A table cell; numbers (and CIs) never wrap, text may break anywhere to fit the column."""
    text = str(value)
    cls = ' class="num"' if text and _NUMERIC.match(text) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def to_html(table: pd.DataFrame, caption: str | None = None) -> str:
    """An HTML table without index; cells already formatted (see :func:`format_table`)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in table.itertuples(index=False))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="book-table">{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def table_html(table: pd.DataFrame, columns=None, *, caption: str | None = None, max_rows: int = MAX_ROWS,
               digits: int = 3, what: str = "rows") -> str:
    """The HTML the book shows: the first ``max_rows`` rows, the whole table in a folded block."""
    shown = format_table(table, columns, digits=digits)
    if len(shown) <= max_rows:
        return f'<div class="book-table-wrap">{to_html(shown, caption)}</div>'
    head = to_html(shown.head(max_rows), caption)
    return (f'<div class="book-table-wrap">{head}<p class="book-table-more">First {max_rows} of {len(shown)} '
            f"{what}.</p><details><summary>Show all {len(shown)} {what}</summary>{to_html(shown)}</details></div>")


def show(table: pd.DataFrame, columns=None, *, caption: str | None = None, max_rows: int = MAX_ROWS,
         digits: int = 3, what: str = "rows"):
    """Display ``table`` the book's way (an IPython HTML object; the last line of a cell)."""
    from IPython.display import HTML

    return HTML(table_html(table, columns, caption=caption, max_rows=max_rows, digits=digits, what=what))
