"""Every error of the command is one stderr line in flags and file names, exit status 2; the
progress is drawn on a terminal only, one line per stage, and never with ``-q``."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import warnings
from pathlib import Path

import polars as pl
import pytest
from cli_data import ndjson_lines, run_cli, subprocess_env, write_coco, write_lines

import polars_metrics as pm
from polars_metrics import cli
from polars_metrics.cli.errors import one_line, translate


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli_errors")
    gt, pd = pm.synthetic.detections(n_images=20, n_classes=4, seed=5)
    gt.write_parquet(d / "gt.parquet")
    pd.write_parquet(d / "pd.parquet")
    coco_gt, coco_pd = write_coco(gt, pd, d)
    bad = gt.with_columns(pl.when(pl.col("id") == 4)
                          .then(pl.lit([9.0, 0, 1, 1], dtype=gt["bbox"].dtype))
                          .otherwise(pl.col("bbox")).alias("bbox"))
    bad.write_parquet(d / "bad.parquet")
    (d / "corrupt.parquet").write_bytes(b"PAR1" + b"\x00" * 64)
    (d / "truncated.json").write_text('{"images": [{"id": 1, "height": 10')
    (d / "a_file").write_text("x")
    lines = ndjson_lines(pd)
    lines[3] = '{"dataRow": {"id": "img_000001"}, "name": "car", "bbox": {"top": 1'
    write_lines(d / "broken.ndjson", lines)
    return {"gt": d / "gt.parquet", "pd": d / "pd.parquet", "bad": d / "bad.parquet",
            "corrupt": d / "corrupt.parquet", "truncated": d / "truncated.json",
            "a_file": d / "a_file", "coco_gt": coco_gt, "coco_pd": coco_pd,
            "broken": d / "broken.ndjson", "dir": d}


def one_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1, err
    assert err.startswith("polars-metrics: error: ") and "Traceback" not in err
    return err


def evaluate(files, *extra: str, gt: str = "gt", pd: str = "pd", out: str | None = None) -> int:
    return cli.main(["evaluate", "--ground-truth", str(files[gt]), "--predictions",
                     str(files[pd]), "--out", out or str(files["dir"] / "out"), *extra])


@pytest.mark.parametrize(("kwargs", "extra", "message"), [
    ({"gt": "a_file"}, [], "cannot tell its format from its content"),
    ({"gt": "corrupt"}, [], "corrupt.parquet: cannot read it as Parquet"),
    ({"gt": "truncated", "pd": "coco_pd"}, [], "truncated.json: not valid JSON"),
    ({"gt": "bad"}, [], "ground_truth.bbox"),
    ({}, ["--report", "/nonexistent-dir/r.html"], "--report /nonexistent-dir/r.html: the "
     "directory /nonexistent-dir does not exist"),
    ({}, ["--confidence-thresholds", "0.5,2"], "--confidence-thresholds must be finite"),
    ({}, ["--data-row", "image"], "missing column(s) ['image']"),
    ({}, ["--data-rows", "/nonexistent.parquet"], "--data-rows /nonexistent.parquet: no such"),
    ({"gt": "coco_gt", "pd": "broken"}, [], "--predictions must be a COCO results JSON"),
    ({"gt": "gt", "pd": "broken"}, [], "line 4"),
    ({}, ["--label-selection", "lates"], '--label-selection lates: must be one of first, '
     'latest, benchmark, consensus, error. Did you mean "latest"?'),
])
def test_error_paths_are_one_line(files, capsys, kwargs, extra, message):
    assert evaluate(files, *extra, **kwargs) == 2
    assert message in one_error(capsys)


def test_library_errors_speak_in_flags_and_file_names(files, capsys):
    assert evaluate(files, gt="bad") == 2
    err = one_error(capsys)
    assert "--on-invalid drop" in err and "rejects.parquet" in err
    assert "on_invalid" not in err and "ev.rejects" not in err
    assert f"[ground_truth: {files['bad']}]" in err
    assert evaluate(files, "--iou-type", "segm") == 2
    err = one_error(capsys)
    assert "--iou-type is an option of the COCO engine" in err and "--profile coco" in err
    assert "iou_type" not in err and "Profile.coco" not in err


def test_unusable_out(files, tmp_path, capsys):
    assert evaluate(files, out=str(files["a_file"])) == 2
    assert "is a file, not a directory" in one_error(capsys)
    assert evaluate(files, out=str(files["a_file"] / "out")) == 2
    assert f"--out {files['a_file'] / 'out'}: cannot write there" in one_error(capsys)
    assert evaluate(files, "--report", str(tmp_path)) == 2
    assert "is a directory; name the file" in one_error(capsys)


def test_write_failure_after_the_work_is_one_line(files, tmp_path, capsys, monkeypatch):
    def fail(self, directory):
        raise PermissionError(13, "Permission denied", str(Path(directory) / "cube.parquet"))

    monkeypatch.setattr(pm.Evaluation, "write", fail)
    assert evaluate(files, out=str(tmp_path / "o")) == 2
    assert "cube.parquet: Permission denied" in one_error(capsys)


def test_raw_reader_exception_is_one_line(files, tmp_path, capsys, monkeypatch):
    import polars_metrics.io.labelbox as lb

    path = write_lines(tmp_path / "pd.ndjson", ndjson_lines(pl.read_parquet(files["pd"])))

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(lb, "read_labelbox_ndjson", boom)
    assert cli.main(["evaluate", "--ground-truth", str(files["gt"]), "--predictions", str(path),
                     "--out", str(tmp_path / "o")]) == 2
    err = one_error(capsys)
    assert (f"--predictions {path}: cannot read it as labelbox-ndjson: ZeroDivisionError: "
            "division by zero second line") in err


def test_unexpected_exception_and_multiline_library_error(files, tmp_path, capsys, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "evaluate", bug)
    assert evaluate(files, out=str(tmp_path / "o")) == 2
    err = one_error(capsys)
    assert "KeyError: 'boom' (unexpected; set POLARS_METRICS_TRACEBACK=1" in err

    def library(*args, **kwargs):
        raise pm.SchemaError("predictions is missing:\n  shape: (2, 1)\n  | a |")

    monkeypatch.setattr(cli, "evaluate", library)
    assert evaluate(files, out=str(tmp_path / "o")) == 2
    assert "predictions is missing: shape: (2, 1) | a |" in one_error(capsys)


def test_warnings_are_one_line_each(files, tmp_path, capsys, monkeypatch):
    real = cli.evaluate

    def warn(*args, **kwargs):
        warnings.warn("half the rows were rejected\n  (on_invalid='drop'); see ev.rejects",
                      pm.PolarsMetricsWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "evaluate", warn)
    assert evaluate(files, "-q", out=str(tmp_path / "o")) == 0
    err = capsys.readouterr().err
    assert err == ("polars-metrics: warning: half the rows were rejected (--on-invalid drop); "
                   "see rejects.parquet\n")


def test_subprocess_error_exit_status_and_one_line(files, tmp_path):
    res = run_cli("evaluate", "--ground-truth", str(files["bad"]), "--predictions",
                  str(files["pd"]), "--out", str(tmp_path / "o"), capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "ground_truth.bbox" in res.stderr
    res = run_cli("evaluate", "--iou", "0.5", capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "unrecognized arguments: --iou" in res.stderr or "required" in res.stderr


def test_translate_messages():
    assert translate("pass data_rows=frame with the data-row key") == \
        "pass --data-rows FILE with the data-row key"
    assert translate("rows='all' is not supported with profile='coco': see ev.excluded") == \
        "--rows all is not supported with --profile coco: see excluded.parquet"
    assert translate("use class_aware=True or use_cats=False") == \
        "use --class-aware or --no-use-cats"
    # row descriptions and English are left alone
    assert translate("row 5 (data_row='img_1', id=6): 3 rows are bad; by column 'x'") == \
        "row 5 (data_row='img_1', id=6): 3 rows are bad; by column 'x'"
    assert one_line("a\n  b\n\nc ") == "a b c"


# --- progress ------------------------------------------------------------------------------------

def test_progress_is_silent_off_a_terminal(files, tmp_path, capsys):
    assert evaluate(files, out=str(tmp_path / "o")) == 0  # capsys: stderr is not a terminal
    assert capsys.readouterr().err == ""


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal; (status, stdout, stderr as drawn)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "polars_metrics.cli", *args],
                            stdout=subprocess.PIPE, stderr=slave,
                            env={**subprocess_env(), "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    out = proc.stdout.read().decode()
    proc.wait(timeout=600)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", errors="replace")


def _final_lines(drawn: str) -> list[str]:
    """What stays on the terminal: each line's text after its last carriage return."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    finals = (line.rstrip("\r").rsplit("\r", 1)[-1].strip() for line in text.split("\n"))
    return [line for line in finals if line]


def test_progress_on_a_terminal_is_one_line_per_stage(files, tmp_path):
    status, out, drawn = _on_a_terminal(
        "evaluate", "--ground-truth", str(files["coco_gt"]), "--predictions",
        str(files["coco_pd"]), "--out", str(tmp_path / "o"), "--json")
    assert status == 0
    json.loads(out)  # stdout holds only the JSON; the progress went to the terminal
    lines = _final_lines(drawn)
    stages = ["read ground truth", "read predictions", "convert COCO", "evaluate",
              "write outputs"]
    assert len(lines) == len(stages), lines
    for line, stage in zip(lines, stages, strict=True):
        assert line.startswith(f"done {stage}"), (line, stage)
        assert re.search(r"\d:\d\d:\d\d$", line)  # elapsed time


def test_quiet_on_a_terminal_draws_nothing(files, tmp_path):
    status, out, drawn = _on_a_terminal(
        "evaluate", "--ground-truth", str(files["gt"]), "--predictions", str(files["pd"]),
        "--out", str(tmp_path / "o"), "-q")
    assert status == 0 and "| micro" in out
    assert drawn == ""


def test_a_failed_stage_says_so_on_a_terminal(files, tmp_path):
    status, _, drawn = _on_a_terminal(
        "evaluate", "--ground-truth", str(files["bad"]), "--predictions", str(files["pd"]),
        "--out", str(tmp_path / "o"))
    assert status == 2
    lines = _final_lines(drawn)
    assert any(line.startswith("failed evaluate") for line in lines), lines
    errors = [line for line in lines if line.startswith("polars-metrics: error:")]
    assert len(errors) == 1
