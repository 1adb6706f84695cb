"""The semantic switches of SPEC §6 as one frozen dataclass, plus the named presets.

Every difference between profiles is a field here; code reads the field, never the profile name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from polars_metrics.errors import ProfileError, did_you_mean


@dataclass(frozen=True)
class Profile:
    """How predictions are matched to ground truth and what is counted.

    Attributes
    ----------
    name : profile name the switches came from.
    greedy_order : "iou" (pairs by IoU descending, one walk per confidence threshold) or
        "score" (COCO: detections by score, each takes its best free ground truth).
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

    def with_switches(self, **switches: Any) -> Profile:
        """Return a copy with some switches changed; unknown names fail with a suggestion."""
        names = {f.name for f in dataclasses.fields(self)} - {"name"}
        for key in switches:
            if key not in names:
                raise ProfileError(
                    f"Unknown profile switch {key!r}; switches are {sorted(names)}."
                    + did_you_mean(key, names)
                )
        return dataclasses.replace(self, **switches) if switches else self


PROFILES: dict[str, Profile] = {
    "labelbox": Profile(),
    "labelbox-sdk": Profile(
        name="labelbox-sdk", class_aware=True, use_confidence=False, rows="all", zero_tn=True
    ),
    "coco": Profile(
        name="coco", greedy_order="score", class_aware=True, iou_strict=False, rows="ground_truth"
    ),
}


def get_profile(profile: str | Profile, **switches: Any) -> Profile:
    """Resolve a profile name (or object) and apply keyword switches on top of it."""
    if isinstance(profile, Profile):
        return profile.with_switches(**switches)
    if profile not in PROFILES:
        raise ProfileError(
            f"Unknown profile {profile!r}; profiles are {sorted(PROFILES)}."
            + did_you_mean(profile, PROFILES)
        )
    return PROFILES[profile].with_switches(**switches)
