"""How the command reports a problem: one line on stderr, in flags and file names, exit 2.

The library speaks Python (``on_invalid='drop'``, ``ev.rejects``, ``iou_type``); on the command
line the same advice reads ``--on-invalid drop``, ``rejects.parquet``, ``--iou-type``.
:func:`translate` rewrites a library message that way, :func:`one_line` folds it onto one line.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Mapping

PROG = "polars-metrics"
EXIT_ERROR = 2

# keyword arguments of pm.evaluate / the readers / the profile switches -> the flag that sets them
OPTION_FLAGS = {
    "on_invalid": "--on-invalid", "confidence_thresholds": "--confidence-thresholds",
    "iou_thresholds": "--iou-thresholds", "data_rows": "--data-rows", "data_row": "--data-row",
    "by": "--by", "profile": "--profile", "label_selection": "--label-selection",
    "project": "--project", "model_run": "--model-run", "mask_root": "--mask-root",
    "greedy_order": "--greedy-order", "class_aware": "--class-aware",
    "iou_strict": "--iou-strict", "use_confidence": "--use-confidence", "rows": "--rows",
    "zero_tn": "--zero-tn", "buffer_radius": "--buffer-radius", "point_iou": "--point-iou",
    "crs": "--crs", "iou_type": "--iou-type", "max_dets": "--max-dets",
    "area_ranges": "--area-ranges", "rec_thresholds": "--rec-thresholds", "use_cats": "--use-cats",
    "engine": "--engine", "memory_limit": "--memory-limit", "batch_size": "--batch-size",
    "batches": "--batches", "assume_bucketed": "--assume-bucketed",
}
# result frames -> the files `evaluate --out DIR` writes them to
FRAME_FILES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects", "repairs",
               "matches")

_NAMES = "|".join(sorted(OPTION_FLAGS, key=len, reverse=True))
_VALUE = r"""(?:'[^']*'|"[^"]*"|\[[^\]]*\]|\([^)]*\)|[\w.:+-]+)"""
# `data_row=` is left alone: messages name a row by its key, `data_row='img_1'`
_ASSIGN = re.compile(rf"(?<![\w.-])({_NAMES.replace('|data_row|', '|')})=({_VALUE})")
_QUOTED = re.compile(rf"""(?<![\w.])['"`]({_NAMES})['"`]""")
# bare identifiers only when they cannot be English ("rows are ..."): those with an underscore
_BARE = re.compile(r"(?<![\w.'\"=-])(" + "|".join(
    sorted((n for n in OPTION_FLAGS if "_" in n), key=len, reverse=True))
                   + r")(?= must| takes| is | are |:)")
_FRAME = re.compile(rf"\bev\.({'|'.join(FRAME_FILES)})\b(?!\()")
_PROFILE_ATTR = re.compile(r" ?\(Profile\.(coco|sdk)\)")


class CliError(Exception):
    """A problem with the command line or the input files (printed as one line, exit 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with no prefix matching (``--iou`` is not ``--iou-thresholds``) and errors as
    :class:`CliError` (one line, exit 2) instead of usage text plus a message."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102  (argparse's hook)
        raise CliError(f"{message} (see {self.prog} --help)")


def _value(raw: str) -> str:
    if raw[:1] in "'\"" and raw[-1:] == raw[:1]:
        return raw[1:-1]
    return raw


def _assignment(match: re.Match) -> str:
    flag, value = OPTION_FLAGS[match.group(1)], _value(match.group(2))
    if value == "True":
        return flag
    if value == "False":
        return "--no-" + flag[2:]
    if value == "None":
        return f"no {flag}"
    if value in ("frame", "...", "[...]"):
        return f"{flag} FILE"
    return f"{flag} {value}"


def translate(message: str, files: Mapping[str, str] | None = None) -> str:
    """Rewrite a library message in the command line's terms.

    ``files`` maps the library's table names (ground_truth, predictions, data_rows) to the
    files they were read from; the tables a message names are followed by their file.

    Examples
    --------
    >>> translate("Fix the input, or pass on_invalid='drop' to set such entries aside.")
    'Fix the input, or pass --on-invalid drop to set such entries aside.'
    >>> translate("'iou_type' is an option of the COCO engine (Profile.coco); such options "
    ...           "only apply to profile='coco'.")
    '--iou-type is an option of the COCO engine; such options only apply to --profile coco.'
    >>> translate("listed in ev.excluded; use class_aware=False", {"ground_truth": "gt.json"})
    'listed in excluded.parquet; use --no-class-aware'
    >>> translate("ground_truth.bbox row 3: x1 < x0", {"ground_truth": "gt.parquet"})
    'ground_truth.bbox row 3: x1 < x0 [ground_truth: gt.parquet]'
    """
    text = _PROFILE_ATTR.sub("", message)
    text = _ASSIGN.sub(_assignment, text)
    text = _QUOTED.sub(lambda m: OPTION_FLAGS[m.group(1)], text)
    text = _BARE.sub(lambda m: OPTION_FLAGS[m.group(1)], text)
    text = _FRAME.sub(lambda m: f"{m.group(1)}.parquet", text)
    named = [f"{table}: {path}" for table, path in (files or {}).items()
             if path and re.search(rf"(?<![\w-]){table}(?![\w-])", text)]
    return f"{text} [{'; '.join(named)}]" if named else text


def one_line(message: str) -> str:
    """Fold a message onto one line (a library error may carry a table or a list below it)."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()
