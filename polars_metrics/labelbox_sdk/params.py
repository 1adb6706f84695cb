"""The options of ``pm.labelbox_sdk``: a profile carrying :class:`SdkOptions`, plus keywords.

Every function of the package takes ``profile=`` (None: the ``"labelbox-sdk"`` preset) and the
fields of :class:`~polars_metrics.profiles.SdkOptions` as keywords; a keyword overrides the
profile's value. The SDK's own rules (class-aware, no confidence, every data row, ``iou > t``,
IoU-ordered greedy, TN = 0) are fixed: a profile that changes one of them is rejected, never
silently ignored. The geometry switches ``buffer_radius``, ``point_iou`` and ``crs`` are honoured
(they reach the pairs stage).

Examples
--------
>>> from polars_metrics.labelbox_sdk.params import resolve
>>> resolve(None, coordinate_decimals=None, include_subclasses=True).sdk
SdkOptions(coordinate_decimals=None, span_end='from_column', semantic_masks=True, include_subclasses=True)
>>> resolve(None, semantic_mask=False)
Traceback (most recent call last):
...
polars_metrics.errors.ProfileError: Unknown option 'semantic_mask' of pm.labelbox_sdk; options are ['coordinate_decimals', 'include_subclasses', 'semantic_masks', 'span_end']. Did you mean "semantic_masks"?
"""
from __future__ import annotations

import dataclasses
from typing import Any

from polars_metrics.errors import ProfileError, ThresholdError, did_you_mean
from polars_metrics.profiles import PROFILES, Profile, SdkOptions, get_profile

SDK_PROFILE = "labelbox-sdk"
OPTIONS = tuple(f.name for f in dataclasses.fields(SdkOptions))
SPAN_ENDS = ("from_column", "as_given")
# Profile switches whose value is the SDK's rule; the functions cannot run another one.
FIXED_SWITCHES = ("greedy_order", "class_aware", "iou_strict", "use_confidence", "rows", "zero_tn")


def resolve(profile: str | Profile | None = None, **options: Any) -> Profile:
    """The profile the SDK functions run: ``profile`` (default ``"labelbox-sdk"``) with the
    given :class:`SdkOptions` fields replaced; a keyword given as None other than
    ``coordinate_decimals`` (where None means "no rounding") keeps the profile's value.

    Raises :class:`~polars_metrics.errors.ProfileError` for an unknown option, an invalid
    value, a profile without SDK options, or one that changes a rule the SDK fixes.

    Examples
    --------
    >>> resolve("labelbox-sdk", span_end="as_given").sdk.span_end
    'as_given'
    >>> resolve("labelbox")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.ProfileError: pm.labelbox_sdk reads Profile.sdk; profile 'labelbox' has none. Use profile='labelbox-sdk' (or pm.get_profile('labelbox-sdk', ...)).
    """
    unknown = [k for k in options if k not in OPTIONS]
    if unknown:
        raise ProfileError(f"Unknown option {unknown[0]!r} of pm.labelbox_sdk; options are "
                           f"{sorted(OPTIONS)}." + did_you_mean(unknown[0], OPTIONS))
    base = get_profile(SDK_PROFILE if profile is None else profile)
    if base.sdk is None:
        raise ProfileError(f"pm.labelbox_sdk reads Profile.sdk; profile {base.name!r} has none. "
                           f"Use profile={SDK_PROFILE!r} (or pm.get_profile({SDK_PROFILE!r}, ...)).")
    preset = PROFILES[SDK_PROFILE]
    changed = [f"{k}={getattr(base, k)!r}" for k in FIXED_SWITCHES
               if getattr(base, k) != getattr(preset, k)]
    if changed:
        raise ProfileError(f"pm.labelbox_sdk follows the SDK's rules; profile {base.name!r} sets "
                           f"{', '.join(changed)}, which they fix. Use pm.evaluate for other rules.")
    given = {k: v for k, v in options.items() if v is not None or k == "coordinate_decimals"}
    for name in ("semantic_masks", "include_subclasses"):
        if name in given:
            given[name] = _flag(name, given[name])
    sdk = dataclasses.replace(base.sdk, **given)
    _check(sdk)
    return dataclasses.replace(base, sdk=sdk)


def _flag(name: str, value: Any) -> bool:
    """True / False (numpy booleans and 0 / 1 included); anything else is an error."""
    if isinstance(value, (bool, int)) or type(value).__name__ == "bool_":
        if value in (0, 1):
            return bool(value)
    raise ProfileError(f"{name} must be True or False, got {value!r}.")


def _check(sdk: SdkOptions) -> None:
    d = sdk.coordinate_decimals
    if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
        raise ProfileError(f"coordinate_decimals must be None or an int >= 0, got {d!r}.")
    if sdk.span_end not in SPAN_ENDS:
        raise ProfileError(f"span_end must be one of {list(SPAN_ENDS)}, got {sdk.span_end!r}."
                           + did_you_mean(str(sdk.span_end), SPAN_ENDS))


def check_iou(iou: float) -> float:
    """The confusion matrix's IoU threshold as a float in [0, 1].

    >>> check_iou(1)
    1.0
    """
    iou = float(iou)
    if not 0.0 <= iou <= 1.0:
        raise ThresholdError(f"iou must be in [0, 1], got {iou}.")
    return iou
