"""Option parsing shared by the subcommands: argparse with both flag spellings, HfArgumentParser for dataclasses."""

from __future__ import annotations

import argparse
from typing import Any

from transformers import HfArgumentParser

FLAG_STYLE = (
    "Options are written with dashes (--batch-size); every subcommand also accepts the underscore spelling of "
    "transformers' scripts (--batch_size). Abbreviated options are refused."
)


class CommandParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` for a subcommand: no abbreviated options, and every `--dashed-option` also answers
    to `--dashed_option`, as `HfArgumentParser` does for the dataclass fields of `train` and `evaluate`."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("epilog", FLAG_STYLE)
        super().__init__(**kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        aliases = [name.replace("-", "_") for name in names if name.startswith("--") and "-" in name[2:]]
        return super().add_argument(*names, *["--" + alias[2:] for alias in aliases], **kwargs)


def command_parser(dataclass_types: list[type], prog: str) -> HfArgumentParser:
    """An HfArgumentParser for a subcommand: abbreviated options refused, the flag style in the help."""
    return HfArgumentParser(dataclass_types, prog=prog, allow_abbrev=False, epilog=FLAG_STYLE)


def parse_dataclasses(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """`parser.parse_args_into_dataclasses(argv)`, with argparse's usage + error line (exit 2) for an unknown option
    (HfArgumentParser raises a ValueError for those)."""
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(parsed)
