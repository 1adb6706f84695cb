"""The options ``evaluate`` and ``report`` share: inputs, readers and every ``pm.evaluate`` option.

:func:`add_evaluate_arguments` defines them all in one place and :func:`evaluate_kwargs` turns
them back into ``pm.evaluate`` keywords, so a new evaluate option is one entry in each. The
profile switches come from the profile dataclasses: a switch without a flag fails a test.
"""
from __future__ import annotations

import argparse
from typing import Any

from polars_metrics import schema as s
from polars_metrics.cli.errors import CliError
from polars_metrics.cli.inputs import FORMATS, ReadOptions

DEFAULT_PROFILE = "labelbox"


def _floats(flag: str):
    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.replace(" ", "").split(",") if v != "")
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"takes comma-separated numbers, e.g. 0,0.25,0.5; got {text!r}") from None
    parse.__name__ = flag
    return parse


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v != "")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes comma-separated integers, e.g. 1,10,100; got {text!r}") from None


def _area_ranges(text: str) -> tuple[tuple[str, float, float], ...]:
    """``all:0:1e10,small:0:1024`` -> (("all", 0.0, 1e10), ("small", 0.0, 1024.0))."""
    out = []
    for item in filter(None, text.replace(" ", "").split(",")):
        parts = item.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            out.append((parts[0], float(parts[1]), float(parts[2])))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"takes LABEL:LOW:HIGH items separated by commas (areas in pixels²), e.g. "
                f"all:0:1e10,small:0:1024; got {item!r}") from None
    return tuple(out)


_BOOL = argparse.BooleanOptionalAction
# every field of Profile and CocoOptions: (argparse keywords, help). SdkOptions are not here:
# pm.evaluate refuses them (they are options of the pm.labelbox_sdk functions).
SWITCHES: dict[str, tuple[dict[str, Any], str]] = {
    "greedy_order": ({"metavar": "iou|score"}, "matching walk: pairs by IoU, or predictions by "
                     "confidence"),
    "class_aware": ({"action": _BOOL}, "match only within a class (confusions are then not "
                    "found)"),
    "iou_strict": ({"action": _BOOL}, "a pair matches at IoU > t (else >= t, COCO)"),
    "use_confidence": ({"action": _BOOL}, "filter predictions by confidence >= c per threshold"),
    "rows": ({"metavar": "both|all|ground_truth"}, "which data rows count"),
    "zero_tn": ({"action": _BOOL}, "report true negatives of object kinds as 0, not null"),
    "buffer_radius": ({"type": float, "metavar": "R"}, "buffer radius of points and lines"),
    "point_iou": ({"metavar": "buffer|circle"}, "point IoU: shapely buffers or exact circles"),
    "crs": ({"metavar": "CRS"}, "coordinate reference system, e.g. EPSG:4326"),
    "iou_type": ({"metavar": "bbox|segm"}, "COCO: compare boxes or masks"),
    "max_dets": ({"type": _ints, "metavar": "N,N,..."}, "COCO maxDets (default 1,10,100)"),
    "area_ranges": ({"type": _area_ranges, "metavar": "LABEL:LO:HI,..."}, "COCO area ranges"),
    "rec_thresholds": ({"type": _floats("--rec-thresholds"), "metavar": "R,R,..."},
                       "COCO recall thresholds (default 101 points)"),
    "use_cats": ({"action": _BOOL}, "COCO: evaluate per category (--no-use-cats pools them)"),
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The input files and how to read them (evaluate and report)."""
    g = p.add_argument_group("inputs")
    g.add_argument("--ground-truth", required=True, metavar="FILE",
                   help="ground truth: Parquet (file, directory or glob), COCO instances JSON, "
                        "Labelbox NDJSON or Labelbox export (the format is read from the content)")
    g.add_argument("--predictions", metavar="FILE",
                   help="predictions: Parquet, COCO results JSON, Labelbox NDJSON or export "
                        "(optional when --ground-truth is a Labelbox model-run export)")
    g.add_argument("--format", nargs="+", metavar="FORMAT",
                   help=f"force the format of both inputs, or of each (GT PD): {', '.join(FORMATS)}")
    g.add_argument("--data-rows", metavar="FILE",
                   help="per-data-row metadata (the key and --by columns): Parquet or a Labelbox "
                        "export (a Labelbox export as --ground-truth gives it already)")
    g.add_argument("--project", metavar="ID", help="Labelbox export: the project to read")
    g.add_argument("--model-run", metavar="ID", help="Labelbox export: the model run to read")
    g.add_argument("--label-selection", default="first", metavar="first|latest|benchmark|"
                   "consensus|error", help="Labelbox export: which label of a data row with "
                   "several (default: first)")
    g.add_argument("--mask-root", metavar="DIR", help="Labelbox: local directory of mask PNGs")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """Every ``pm.evaluate`` option (the one place evaluate options are defined)."""
    g = p.add_argument_group("evaluation")
    g.add_argument("--profile", default=DEFAULT_PROFILE, metavar="labelbox|labelbox-sdk|coco",
                   help="semantic profile (default: labelbox)")
    g.add_argument("--data-row", nargs="+", default=[s.DATA_ROW], metavar="COL",
                   help="data-row key column(s); several for a composite key (default: data_row)")
    g.add_argument("--by", nargs="+", default=[], metavar="COL",
                   help="slice the metrics by these columns (constant per data row), e.g. split")
    g.add_argument("--confidence-thresholds", type=_floats("--confidence-thresholds"),
                   metavar="C,C,...", help="comma-separated, in [0, 1] (default: 0,0.1,...,1)")
    g.add_argument("--iou-thresholds", type=_floats("--iou-thresholds"), metavar="T,T,...",
                   help="comma-separated, in [0, 1] (default: 0,0.1,...,1; coco: .5:.05:.95)")
    g.add_argument("--on-invalid", default="raise", metavar="raise|drop",
                   help="invalid input rows: fail (default) or set them aside in rejects.parquet")
    sw = p.add_argument_group("profile switches (default: the profile's own)")
    for name, (kwargs, text) in SWITCHES.items():
        sw.add_argument(flag(name), dest=f"switch_{name}", default=None, help=text, **kwargs)


def switches(args: argparse.Namespace) -> dict[str, Any]:
    """The profile switches given on the command line."""
    return {name: getattr(args, f"switch_{name}") for name in SWITCHES
            if getattr(args, f"switch_{name}") is not None}


def read_options(args: argparse.Namespace) -> ReadOptions:
    """The reader options, checked now (a typo fails before any file is read)."""
    from polars_metrics.errors import did_you_mean
    from polars_metrics.io.labelbox.export import LABEL_SELECTIONS

    if args.label_selection not in LABEL_SELECTIONS:
        raise CliError(f"--label-selection {args.label_selection}: must be one of "
                       f"{', '.join(LABEL_SELECTIONS)}."
                       + did_you_mean(args.label_selection, LABEL_SELECTIONS))
    return ReadOptions(on_invalid=args.on_invalid, project=args.project,
                       model_run=args.model_run, label_selection=args.label_selection,
                       mask_root=args.mask_root)


def evaluate_kwargs(args: argparse.Namespace, *, coco_input: bool = False) -> dict[str, Any]:
    """``pm.evaluate`` keywords from the parsed options (besides the two tables and data_rows).

    Under a profile other than "coco", ``--iou-type`` of COCO input chose the geometry the
    frames carry (:func:`~polars_metrics.cli.inputs.comparable_coco`); it is no switch there.
    """
    sw = switches(args)
    if coco_input and args.profile != "coco":
        sw.pop("iou_type", None)
    keys = args.data_row
    return {"profile": args.profile, "confidence_thresholds": args.confidence_thresholds,
            "iou_thresholds": args.iou_thresholds, "by": args.by or None,
            "data_row": keys[0] if len(keys) == 1 else keys, "on_invalid": args.on_invalid,
            **sw}


def check_on_invalid(value: str) -> None:
    if value not in ("raise", "drop"):
        from polars_metrics.errors import did_you_mean

        raise CliError(f"--on-invalid {value}: must be raise or drop."
                       + did_you_mean(value, ("raise", "drop")))
