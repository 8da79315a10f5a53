"""The book's table formatting: numbers, p values, CIs, folding of long tables."""

import numpy as np
import pandas as pd
import pytest

from lib import tables


@pytest.mark.parametrize("x, text", [
    (17.08, "17.1"), (0.012345, "0.0123"), (-0.5, "−0.500"), (123456.7, "123,457"), (3, "3"),
    (np.int64(12), "12"), (np.nan, "–"), (None, "–"), (0.0, "0"), (True, "yes"), (6.0, "6"),
])
def test_numbers_have_three_significant_digits(x, text):
    assert tables.fmt_number(x) == text


def test_p_values_floor_and_ci_cells():
    assert tables.fmt_p(0.0002) == "< 0.001"
    assert tables.fmt_p(0.0312) == "0.031"
    assert tables.fmt_ci(-0.05, 0.2) == "[−0.0500, 0.200]"
    assert tables.fmt_ci(np.nan, 0.2) == "–"
    assert tables.fmt_pm(0.1234, 0.0456) == "0.123 ± 0.046"
    assert tables.fmt_pm(0.1234, np.nan) == "0.123" and tables.fmt_pm(np.nan, 0.1) == "–"


def test_format_table_merges_ci_renames_and_drops_the_index():
    df = pd.DataFrame({"model": ["a", "b"], "rho": [0.1234, -0.02], "ci_low": [0.1, -0.05],
                       "ci_high": [0.2, 0.01], "q": [0.0001, 0.3]}, index=[7, 9])
    out = tables.format_table(df)
    assert list(out.columns) == ["network", "ρ", "95 % CI", "q (FDR)"]
    assert out.iloc[0].tolist() == ["a", "0.123", "[0.100, 0.200]", "< 0.001"]
    assert list(out.index) == [0, 1]
    with pytest.raises(KeyError, match="no column"):
        tables.format_table(df, ["nope"])


def test_long_tables_are_folded_and_short_ones_are_not():
    long = pd.DataFrame({"x": np.arange(40) / 7})
    html = tables.table_html(long, max_rows=15)
    shown, folded = html.split("<details>")
    assert shown.count("<tr>") == 16 and folded.count("<tr>") == 41  # header + rows
    assert "Show all 40 rows" in html and "<th></th>" not in html
    short = tables.table_html(long.head(5))
    assert "<details>" not in short and short.count("<tr>") == 6
