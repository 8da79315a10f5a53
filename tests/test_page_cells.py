"""What a chapter page shows of its set-up cells: no empty toggles, the run's parameters one
labelled click away (lib.build._fold_parameter_cells, applied when the site is staged)."""

import nbformat

from lib.build import _fold_parameter_cells


def test_setup_cells_leave_the_page_and_the_run_parameters_stay_folded(tmp_path):
    nb = nbformat.v4.new_notebook()
    cells = [
        nbformat.v4.new_code_cell("profile = 'demo'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("profile = 'tiny'", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("import lib", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell("fig = plot()", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    cells[3].outputs = [nbformat.v4.new_output("display_data", {"text/plain": "<Figure>"})]
    nb.cells = cells
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    _fold_parameter_cells(src, out)
    got = nbformat.read(out, as_version=4).cells
    assert "remove-cell" in got[0].metadata["tags"]                      # defaults: on the Reproducibility page
    assert "hide-cell" in got[1].metadata["tags"]                        # this run's values: one click away
    assert got[1].metadata["mystnb"]["code_prompt_show"] == "Show the parameters of this run"
    assert "remove-cell" in got[2].metadata["tags"]                      # imports print nothing: no empty toggle
    assert got[3].metadata["tags"] == ["hide-input"]                     # a figure keeps its code folded
    assert got[4].metadata.get("tags", []) == []
