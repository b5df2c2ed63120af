"""Model cards and Hub publishing for multi-task models."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_command_entry(module_name: str, command: str) -> Callable[[str], Any]:
    """A module `__getattr__` that still answers `main` (moved to `multitask_bert.training.cli.<command>`) with a
    `DeprecationWarning`, for one release."""

    def __getattr__(name: str) -> Any:
        if name != "main":
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        target = f"multitask_bert.training.cli.{command}"
        warnings.warn(
            f"{module_name}.main is deprecated and will be removed in 0.3: use {target}.main.",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(target).main

    return __getattr__
