"""What the ONNX exporter and quantizer log about our own calls, silenced."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class _DropRecords(logging.Filter):
    """Drops log records whose message starts with one of `prefixes`."""

    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextmanager
def quiet_export() -> Iterator[None]:
    """Silence what the exporter and the quantizer say about our calls that means nothing to users: operators of
    torchvision (not installed, not used) that cannot be registered, the dynamic axes sharing one name (on purpose),
    a pytree deprecation inside torch, and onnxruntime's advice to pre-process image models."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    root_filter = _DropRecords("Please consider to run pre-processing before quantization")
    logging.getLogger().addFilter(root_filter)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name: \w+ will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)
        logging.getLogger().removeFilter(root_filter)
