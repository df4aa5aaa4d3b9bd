"""Every model is built by name: `build("DbofModel", num_classes=..., feature_size=..., **params)`.

A family module registers its builders with `@register(name, frame_level=...)`;
a builder is `builder(*, num_classes, feature_size, **params) -> keras.Model` whose
params are keyword-only with defaults (those defaults are `params(name)`).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import keras

REQUIRED_ARGS = ("num_classes", "feature_size")
# What a model reads: video-level `features`, frame-level `frames`/`num_frames`,
# or a raw RGB `clip` (uint8 (B, T, H, W, 3), read with --clip_data_pattern).
INPUT_KINDS = ("features", "frames", "clip")


@dataclasses.dataclass(frozen=True)
class _Entry:
    builder: Callable[..., keras.Model]
    frame_level: bool
    defaults: dict
    input_kind: str = "features"


_ENTRIES: dict[str, _Entry] = {}


def _defaults_of(name: str, builder: Callable) -> dict:
    """The builder's param defaults; rejects signatures the registry cannot call."""
    signature = inspect.signature(builder)
    args = signature.parameters
    for required in REQUIRED_ARGS:
        if required not in args or args[required].kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"model builder {name!r} must take keyword-only {required!r}")
    defaults = {}
    for arg in args.values():
        if arg.name in REQUIRED_ARGS:
            continue
        if arg.kind is not inspect.Parameter.KEYWORD_ONLY or arg.default is inspect.Parameter.empty:
            raise TypeError(f"model builder {name!r}: param {arg.name!r} must be keyword-only "
                            "with a default")
        defaults[arg.name] = arg.default
    return defaults


def register(name: str, *, frame_level: bool, input_kind: str | None = None):
    """Decorator registering `builder` under `name`; returns the builder unchanged.

    `input_kind` defaults to "frames" for frame-level models, else "features";
    clip models (raw RGB frames) say `frame_level=True, input_kind="clip"`.
    """
    kind = input_kind or ("frames" if frame_level else "features")
    if kind not in INPUT_KINDS:
        raise ValueError(f"input_kind {kind!r} is not one of {', '.join(INPUT_KINDS)}")

    def decorate(builder):
        if name in _ENTRIES:
            raise ValueError(f"model {name!r} is already registered")
        _ENTRIES[name] = _Entry(builder, frame_level, _defaults_of(name, builder), kind)
        return builder
    return decorate


def _entry(name: str) -> _Entry:
    if name not in _ENTRIES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return _ENTRIES[name]


def names() -> tuple[str, ...]:
    """The registered model names, sorted."""
    return tuple(sorted(_ENTRIES))


def is_frame_level(name: str) -> bool:
    """True when the model takes `frames`/`num_frames`, False for video-level `features`."""
    return _entry(name).frame_level


def input_kind(name: str) -> str:
    """"features" (video-level), "frames" (frame-level features) or "clip" (raw RGB clips)."""
    return _entry(name).input_kind


def params(name: str) -> dict:
    """The model's params and their defaults."""
    return dict(_entry(name).defaults)


def build(name: str, *, num_classes: int, feature_size: int, **model_params) -> keras.Model:
    """Builds the model `name`; params left out take their defaults."""
    entry = _entry(name)
    unknown = sorted(set(model_params) - set(entry.defaults))
    if unknown:
        valid = ", ".join(sorted(entry.defaults)) or "none"
        raise ValueError(f"unknown param(s) {', '.join(unknown)} for model {name!r}; "
                         f"valid params: {valid}")
    for arg, value in (("num_classes", num_classes), ("feature_size", feature_size)):
        if int(value) <= 0:
            raise ValueError(f"{arg} must be positive, got {value}")
    return entry.builder(num_classes=int(num_classes), feature_size=int(feature_size), **model_params)
