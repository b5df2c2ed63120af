"""The `multitask-bert` command line: one subcommand per module (`train`, `evaluate`, `export`, `predict`, `card`,
`push`, `add_examples`), their options (`arguments`, `parsing`) and printed reports (`report`), above the library:
nothing outside this package imports it.

A subcommand's user errors (`ValueError`, `OSError`: bad data, a missing folder, a refused option) end in one
`multitask-bert COMMAND: error: ...` line on stderr and exit status 2, as argparse's own errors do; `--debug`, before
or after COMMAND (`multitask-bert --debug COMMAND ...`, `multitask-bert COMMAND ... --debug`), shows the traceback
instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version

from datasets.utils import logging as datasets_logging
from transformers.debug_utils import DebugOption
from transformers.utils import logging as transformers_logging

from . import add_examples, card, evaluate, export, predict, push, train
from .parsing import FLAG_STYLE, CommandParser

# name -> (function, help). Each function takes the remaining argv and returns an exit code.
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (train.main, "fine-tune a model (default: embedded data and backbone)"),
    "evaluate": (evaluate.main, "score a trained model on a data split"),
    "export": (export.main, "export a saved model to ONNX (optionally int8) and check it"),
    "predict": (predict.main, "print intent and entities of texts as JSON lines"),
    "card": (card.main, "write the model card of a saved model folder"),
    "push": (push.main, "upload a saved model folder to the Hugging Face Hub"),
    "add-examples": (add_examples.main, "give a model labelled utterances of new intents, without training"),
}
USER_ERRORS = (ValueError, OSError)
USER_ERROR_STATUS = 2
DEBUG_FLAG = "--debug"
# `train --debug underflow_overflow` is TrainingArguments' own `--debug`: a bare `--debug` is the traceback switch.
TRAINER_DEBUG_OPTIONS = {option.value for option in DebugOption}


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<12} {help_text}" for name, (_, help_text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="multitask-bert",
        usage="%(prog)s [-h] [--version] [--debug] COMMAND [OPTIONS ...]",
        description="Train, evaluate and use one encoder for sentence embeddings, intents and entities.",
        epilog=f"commands:\n{listing}\n\nRun `multitask-bert COMMAND --help` for its options. {FLAG_STYLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('multitask-bert')}")
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help="show the traceback of an error (for bug reports); also accepted after COMMAND",
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of the commands below")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    command = COMMANDS[args.command][0]
    arguments, debug_after = split_debug_flag(args.arguments)
    try:
        with progress_bars_restored():
            return command(arguments) or 0
    except USER_ERRORS as error:
        if args.debug or debug_after:
            raise
        message = " ".join(str(error).split())
        print(f"multitask-bert {args.command}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS


@contextmanager
def progress_bars_restored() -> Iterator[None]:
    """Run a command and then switch transformers' and datasets' progress bars back as they were (`train
    --disable-tqdm true` turns them off for its run; a Python caller of `main` keeps its own setting)."""
    transformers_bars = transformers_logging.is_progress_bar_enabled()
    datasets_bars = datasets_logging.is_progress_bar_enabled()
    try:
        yield
    finally:
        if transformers_bars:
            transformers_logging.enable_progress_bar()
        else:
            transformers_logging.disable_progress_bar()
        if datasets_bars:
            datasets_logging.enable_progress_bar()
        else:
            datasets_logging.disable_progress_bar()


def split_debug_flag(arguments: list[str]) -> tuple[list[str], bool]:
    """A subcommand's arguments without the traceback switch, and whether it was there: a bare `--debug` (before any
    `--`), not one followed by a `TrainingArguments.debug` value (`--debug underflow_overflow`), which stays."""
    end = arguments.index("--") if "--" in arguments else len(arguments)
    kept, found = [], False
    for position, argument in enumerate(arguments[:end]):
        following = arguments[position + 1] if position + 1 < end else ""
        if argument == DEBUG_FLAG and not set(following.split()) & TRAINER_DEBUG_OPTIONS:
            found = True
        else:
            kept.append(argument)
    return kept + arguments[end:], found


__all__ = ["COMMANDS", "FLAG_STYLE", "CommandParser", "build_parser", "main"]
