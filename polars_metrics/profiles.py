"""The semantic switches of SPEC §6 as frozen dataclasses, plus the named presets.

Every difference between profiles is a field here; code reads the field, never the profile name.
Switches that only one engine reads live in that engine's nested options (``Profile.coco``,
``Profile.sdk``): setting one on a profile without that engine fails with a clear message
instead of being ignored.

>>> import polars_metrics as pm
>>> pm.get_profile("coco", iou_type="segm").coco.iou_type
'segm'
>>> pm.get_profile("labelbox", iou_type="segm")
Traceback (most recent call last):
...
polars_metrics.errors.ProfileError: 'iou_type' is an option of the COCO engine (Profile.coco); such options only apply to profile='coco', and profile 'labelbox' does not run that engine.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from polars_metrics.errors import ProfileError, did_you_mean

# pycocotools' Params.setDetParams defaults (the thresholds themselves are built in coco/params)
COCO_MAX_DETS = (1, 10, 100)
COCO_AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0**2, 1e5**2),
    ("small", 0.0**2, 32.0**2),
    ("medium", 32.0**2, 96.0**2),
    ("large", 96.0**2, 1e5**2),
)


@dataclass(frozen=True)
class CocoOptions:
    """Options of the COCO engine (pycocotools ``Params``), read only under ``profile="coco"``.

    Attributes
    ----------
    iou_type : "bbox" or "segm" (pycocotools ``iouType``).
    max_dets : detections kept per image and category (``maxDets``), e.g. (1, 10, 100).
    area_ranges : ``(label, low, high)`` triples (``areaRng`` / ``areaRngLbl``); a mapping
        ``{label: (low, high)}`` is accepted and converted.
    rec_thresholds : recall thresholds (``recThrs``); None = pycocotools' 101 points.
    use_cats : evaluate per category (True) or pool every category (``useCats=0``).
    """

    iou_type: Literal["bbox", "segm"] = "bbox"
    max_dets: tuple[int, ...] = COCO_MAX_DETS
    area_ranges: tuple[tuple[str, float, float], ...] = COCO_AREA_RANGES
    rec_thresholds: tuple[float, ...] | None = None
    use_cats: bool = True

    def __post_init__(self) -> None:
        if self.iou_type not in ("bbox", "segm"):
            raise ProfileError(f"iou_type must be 'bbox' or 'segm', got {self.iou_type!r}.")
        object.__setattr__(self, "max_dets", tuple(int(m) for m in self.max_dets))
        ranges = self.area_ranges
        if isinstance(ranges, Mapping):
            ranges = tuple((str(k), float(lo), float(hi)) for k, (lo, hi) in ranges.items())
        object.__setattr__(self, "area_ranges", tuple(tuple(r) for r in ranges))
        if self.rec_thresholds is not None:
            object.__setattr__(self, "rec_thresholds",
                               tuple(float(r) for r in self.rec_thresholds))


@dataclass(frozen=True)
class SdkOptions:
    """How the Labelbox SDK's metric functions read their input (``pm.labelbox_sdk``).

    Attributes
    ----------
    coordinate_decimals : round box / polygon / point / line coordinates to this many decimals
        first, as the SDK's geojson round trip does (6); None keeps them as given.
    span_end : "from_column" (undo the +1 that the readers added, as their ``span_end`` column
        says) or "as_given" (use ``end`` as it is).
    semantic_masks : the IoU metric unions each feature's masks first, as ``miou_metric`` does.
    include_subclasses : nested classifications take part in matching and IoU.
    """

    coordinate_decimals: int | None = 6
    span_end: Literal["from_column", "as_given"] = "from_column"
    semantic_masks: bool = True
    include_subclasses: bool = False


@dataclass(frozen=True)
class Profile:
    """How predictions are matched to ground truth and what is counted.

    Attributes
    ----------
    name : profile name the switches came from.
    greedy_order : "iou" (pairs by IoU descending, one walk per confidence threshold) or
        "score" (predictions by confidence descending, each takes its best free ground truth;
        one walk per IoU threshold).
    class_aware : if False, matching ignores the feature and a matched pair of different
        features is a misclassification cell of the confusion matrix.
    iou_strict : IoU test ``iou > t`` (True) or ``iou >= min(t, 1 - 1e-10)`` (False, COCO).
    use_confidence : predictions are filtered by ``confidence >= c`` per threshold.
    rows : which data rows count: "both" (both sides required), "all" (every row given),
        "ground_truth" (every row of the ground truth table).
    zero_tn : report true negatives of object kinds as 0 instead of null.
    buffer_radius : points and lines are buffered by this radius (coordinate units; metres with
        ``crs="EPSG:4326"``) into the polygons shapely's ``buffer`` makes, then polygon IoU.
    point_iou : "buffer" (the 64-gon discs of shapely's ``buffer``, SDK parity) or "circle"
        (exact IoU of true circles of radius ``buffer_radius``).
    crs : None (planar coordinates) or "EPSG:4326" ((lon, lat) degrees: each data row is
        projected to a local equal-area plane before IoU; never IoU in degrees).
    coco : the COCO engine's options; set (not None) exactly when the COCO engine runs.
    sdk : the SDK functions' input options (``pm.labelbox_sdk``); None elsewhere.
    """

    name: str = "labelbox"
    greedy_order: Literal["iou", "score"] = "iou"
    class_aware: bool = False
    iou_strict: bool = True
    use_confidence: bool = True
    rows: Literal["both", "all", "ground_truth"] = "both"
    zero_tn: bool = False
    buffer_radius: float = 70.0
    point_iou: Literal["buffer", "circle"] = "buffer"
    crs: str | None = None
    coco: CocoOptions | None = None
    sdk: SdkOptions | None = None

    def with_switches(self, **switches: Any) -> Profile:
        """Return a copy with some switches changed; unknown names fail with a suggestion.

        A switch of an engine's nested options (e.g. ``iou_type``) changes that engine's
        options, and fails when this profile does not run the engine.
        """
        own = {f.name for f in dataclasses.fields(self)} - {"name", "coco", "sdk"}
        nested = {"coco": _field_names(CocoOptions), "sdk": _field_names(SdkOptions)}
        top: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {"coco": {}, "sdk": {}}
        for key, value in switches.items():
            if key in own:
                top[key] = value
                continue
            engine = next((e for e, names in nested.items() if key in names), None)
            if engine is None:
                known = own | nested["coco"] | nested["sdk"]
                raise ProfileError(f"Unknown profile switch {key!r}; switches are {sorted(known)}."
                                   + did_you_mean(key, known))
            if getattr(self, engine) is None:
                raise ProfileError(
                    f"{key!r} is an option of the {_ENGINE_NAMES[engine]} (Profile.{engine}); "
                    f"such options only apply to profile={_ENGINE_PROFILE[engine]!r}, and "
                    f"profile {self.name!r} does not run that engine.")
            if value is None and engine == "coco":  # None = pycocotools' default
                value = _default(CocoOptions, key)
            parts[engine][key] = value
        for engine, values in parts.items():
            if values:
                top[engine] = dataclasses.replace(getattr(self, engine), **values)
        for key in ("greedy_order", "rows", "point_iou"):
            _check_choice(self, key, top.get(key))
        return dataclasses.replace(self, **top) if top else self


_ENGINE_NAMES = {"coco": "COCO engine", "sdk": "Labelbox SDK functions"}
_ENGINE_PROFILE = {"coco": "coco", "sdk": "labelbox-sdk"}


def _default(cls, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _check_choice(profile: Profile, key: str, value: Any) -> None:
    if value is None:
        return
    allowed = {"greedy_order": ("iou", "score"), "rows": ("both", "all", "ground_truth"),
               "point_iou": ("buffer", "circle")}[key]
    if value not in allowed:
        raise ProfileError(f"Switch {key}={value!r} is not one of {list(allowed)}."
                           + did_you_mean(str(value), allowed))


PROFILES: dict[str, Profile] = {
    "labelbox": Profile(),
    "labelbox-sdk": Profile(
        name="labelbox-sdk", class_aware=True, use_confidence=False, rows="all", zero_tn=True,
        sdk=SdkOptions(),
    ),
    "coco": Profile(
        name="coco", greedy_order="score", class_aware=True, iou_strict=False, rows="ground_truth",
        coco=CocoOptions(),
    ),
}


def get_profile(profile: str | Profile, **switches: Any) -> Profile:
    """Resolve a profile name (or object) and apply keyword switches on top of it.

    >>> get_profile("labelbox", class_aware=True).class_aware
    True
    >>> get_profile("lablebox")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.ProfileError: Unknown profile 'lablebox'; profiles are ['coco', 'labelbox', 'labelbox-sdk']. Did you mean "labelbox"?
    """
    if isinstance(profile, Profile):
        return profile.with_switches(**switches)
    if profile not in PROFILES:
        raise ProfileError(
            f"Unknown profile {profile!r}; profiles are {sorted(PROFILES)}."
            + did_you_mean(profile, PROFILES)
        )
    return PROFILES[profile].with_switches(**switches)


def engine_of(profile: Profile) -> str:
    """The engine that runs a profile: "coco" or "pipeline" (every other profile).

    >>> engine_of(get_profile("coco")), engine_of(get_profile("labelbox-sdk"))
    ('coco', 'pipeline')
    """
    return "coco" if profile.coco is not None else "pipeline"


__all__ = ["PROFILES", "CocoOptions", "Profile", "SdkOptions", "engine_of", "get_profile"]

