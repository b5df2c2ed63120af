"""Option parsing shared by the subcommands: argparse with both flag spellings, HfArgumentParser for dataclasses."""

from __future__ import annotations

import argparse
from typing import Any

from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool

FLAG_STYLE = (
    "Options are written with dashes (--batch-size); every subcommand also accepts the underscore spelling of "
    "transformers' scripts (--batch_size). Abbreviated options are refused."
)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's help with each option's default, except where the help itself says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "Default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


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

    def add_switch(self, *names: str, help: str) -> argparse.Action:
        """A boolean option as HfArgumentParser writes them: `--name true|false`, a bare `--name` meaning true."""
        return self.add_argument(
            *names, type=string_to_bool, nargs="?", const=True, default=False, metavar="{true,false}", help=help
        )


TRAINER_DEBUG_HELP = (
    "transformers' debug features (underflow_overflow, tpu_metrics_debug). A bare --debug, with no feature, shows the "
    "traceback of an error instead."
)


def command_parser(dataclass_types: list[type], prog: str) -> HfArgumentParser:
    """An HfArgumentParser for a subcommand: abbreviated options refused, the flag style in the help, and the help of
    `TrainingArguments.debug` telling it from the traceback switch."""
    parser = HfArgumentParser(
        dataclass_types, prog=prog, allow_abbrev=False, epilog=FLAG_STYLE, formatter_class=DefaultsHelpFormatter
    )
    set_help(parser, {"debug": TRAINER_DEBUG_HELP})
    return parser


def set_help(parser: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """Give the options whose destination is a key of `helps` that help text (for inherited `TrainingArguments`
    fields whose meaning a subcommand sets)."""
    for action in parser._actions:
        if action.dest in helps:
            action.help = helps[action.dest]


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options `argv` gives (in either spelling), whatever their value: argparse fills in a
    default only where the namespace it parses into lacks the attribute."""
    unset = object()
    namespace = argparse.Namespace(
        **{action.dest: unset for action in parser._actions if action.dest != argparse.SUPPRESS}
    )
    parsed, _ = parser.parse_known_args(argv, namespace=namespace)
    return {dest for dest, value in vars(parsed).items() if value is not unset}


def parse_dataclasses(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """`parser.parse_args_into_dataclasses(argv)`, with argparse's usage + error line (exit 2) for an unknown option
    (HfArgumentParser raises a ValueError for those)."""
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(parsed)
