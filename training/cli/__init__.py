"""The `multitask-bert` command line: one subcommand per module (`train`, `evaluate`, `export`, `predict`, `card`,
`push`), their options (`arguments`, `parsing`) and printed reports (`report`), above the library: nothing outside
this package imports it.

A subcommand's user errors (`ValueError`, `OSError`: bad data, a missing folder, a refused option) end in one
`multitask-bert COMMAND: error: ...` line on stderr and exit status 2, as argparse's own errors do; `multitask-bert
--debug COMMAND ...` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import version

from . import card, evaluate, export, predict, push, train
from .parsing import FLAG_STYLE, CommandParser

# name -> (function, help). Each function takes the remaining argv and returns an exit code.
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (train.main, "fine-tune a model (default: embedded data and backbone)"),
    "evaluate": (evaluate.main, "score a trained model on a data split"),
    "export": (export.main, "export a saved model to ONNX (optionally int8) and check it"),
    "predict": (predict.main, "print intent and entities of texts as JSON lines"),
    "card": (card.main, "write the model card of a saved model folder"),
    "push": (push.main, "upload a saved model folder to the Hugging Face Hub"),
}
USER_ERRORS = (ValueError, OSError)
USER_ERROR_STATUS = 2


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="multitask-bert",
        usage="%(prog)s [-h] [--version] [--debug] COMMAND [OPTIONS ...]",
        description="Train, evaluate and use one encoder for sentence embeddings, intents and entities.",
        epilog=f"commands:\n{listing}\n\nRun `multitask-bert COMMAND --help` for its options. {FLAG_STYLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('multitask-bert')}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (for bug reports)")
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
    try:
        return command(args.arguments) or 0
    except USER_ERRORS as error:
        if args.debug:
            raise
        message = " ".join(str(error).split())
        print(f"multitask-bert {args.command}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS


__all__ = ["COMMANDS", "FLAG_STYLE", "CommandParser", "build_parser", "main"]
