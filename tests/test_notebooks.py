"""Every notebook in notebooks/ runs top to bottom without an error.

The kernel is this interpreter (the project's venv), through a kernelspec written into a
temporary ``JUPYTER_PATH`` directory: nothing is installed into the user's Jupyter, and a
``python3`` kernelspec elsewhere on the machine cannot point the test at another Python.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import ipykernel  # noqa: E402, F401
import nbclient  # noqa: E402
import nbformat  # noqa: E402
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# a resource the browser would fetch: <script src="http...">, <link href="http...">, import "http..."
NETWORK = re.compile(r"""(?:src|href)\s*=\s*["']?https?://|import\s*\(?\s*["']https?://|requirejs\.config|cdn\.jsdelivr""")
KERNEL = "polars-metrics-tests"
MAX_COMMITTED_BYTES = 256 * 1024  # notebooks are committed without bulky outputs


@pytest.fixture()
def kernel_name(tmp_path, monkeypatch) -> str:
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "polars_metrics tests", "language": "python",
        "env": {"PYTHONPATH": str(ROOT)},  # the package of this checkout, not an installed one
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_name: str, tmp_path: Path):
    assert path.stat().st_size < MAX_COMMITTED_BYTES, f"{path.name}: commit it without outputs"
    nb = nbformat.read(path, as_version=4)
    workdir = tmp_path / "work"  # whatever a notebook writes lands here
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=600,
                                     resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}")
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, errors
    html = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "text/html" in out.get("data", {})]
    fetched = [m.group(0) for h in html for m in NETWORK.finditer(h)]
    assert not fetched, f"{path.name}: outputs load from the network: {fetched[:5]}"
