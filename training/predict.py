"""Deprecated: `load_pipeline` moved to `multitask_bert.training.inference` (and `multitask_bert`), the `predict`
command to `multitask_bert.training.cli.predict`; this module re-exports them for one release."""

from __future__ import annotations

import warnings

from .cli.predict import build_parser, main, read_texts
from .inference import load_pipeline

warnings.warn(
    "multitask_bert.training.predict is deprecated and will be removed in 0.3: use `multitask_bert.load_pipeline` "
    "(multitask_bert.training.inference) and multitask_bert.training.cli.predict.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["build_parser", "load_pipeline", "main", "read_texts"]
