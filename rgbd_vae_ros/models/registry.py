"""Models by name: each registered with a dataclass config, so a checkpoint's (name, config dict)
rebuilds the model (SPEC §5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["ModelError", "build_model", "check_field_types", "config_from_dict", "model_names", "register_model"]


class ModelError(ValueError):
    """A model name or configuration that cannot build a model."""


_MODELS: dict[str, tuple[type, type]] = {}  # name -> (module class, config dataclass)


def register_model(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: make ``name`` build this module from a ``config_cls`` instance."""

    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise ModelError(f"model name {name!r} is registered twice")
        _MODELS[name] = (cls, config_cls)
        return cls

    return decorate


def model_names() -> list[str]:
    return sorted(_MODELS)


def _lookup(name: str) -> tuple[type, type]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; expected one of {', '.join(model_names())}") from None


def check_field_types(config_cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` with each entry checked against the type of its field's default (int -> float
    allowed, lists -> tuples); a wrong type raises ValueError naming the field and the value."""
    known = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where} has no setting {unknown[0]!r}; its settings are {', '.join(known)}")
    checked = {}
    for key, value in values.items():
        default = known[key].default
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, (int, str, tuple)):
            ok = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
        else:
            ok = True
        if not ok:
            raise ValueError(f"{where}.{key} must be {type(default).__name__}, got {value!r}")
        checked[key] = value
    return checked


def config_from_dict(name: str, values: dict[str, Any] | None = None):
    """The config dataclass of ``name`` from plain values; unknown keys and bad values are errors."""
    _, config_cls = _lookup(name)
    try:
        checked = check_field_types(config_cls, dict(values or {}), "model")
    except ValueError as exc:
        raise ModelError(f"{exc} (model {name!r})") from None
    try:
        return config_cls(**checked)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model {name!r}: {exc}") from None


def build_model(name: str, config: Any = None) -> nn.Module:
    """A fresh model: ``config`` is the dataclass, a dict of its fields, or None for the defaults."""
    cls, config_cls = _lookup(name)
    if config is None or isinstance(config, dict):
        config = config_from_dict(name, config)
    elif not isinstance(config, config_cls):
        raise ModelError(f"model {name!r} takes a {config_cls.__name__}, not a {type(config).__name__}")
    try:
        model = cls(config)
    except ValueError as exc:  # sizes that do not fit the architecture
        raise ModelError(f"model {name!r}: {exc}") from None
    model.model_name = name
    return model
