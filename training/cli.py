"""The `multitask-bert` command line: one subcommand per job, each parsed by its own module.

A subcommand's user errors (`ValueError`, `OSError`: bad data, a missing folder, a refused option) end in one
`multitask-bert COMMAND: error: ...` line on stderr and exit status 2, as argparse's own errors do; `multitask-bert
--debug COMMAND ...` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import version
from typing import Any

# name -> ("module:function", help). Each function takes the remaining argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("multitask_bert.training.commands:train", "fine-tune a model (default: embedded data and backbone)"),
    "evaluate": ("multitask_bert.training.commands:evaluate_model", "score a trained model on a data split"),
    "export": ("multitask_bert.training.export:main", "export a saved model to ONNX (optionally int8) and check it"),
    "predict": ("multitask_bert.training.predict:main", "print intent and entities of texts as JSON lines"),
    "card": ("multitask_bert.hub_card.model_card:main", "write the model card of a saved model folder"),
    "push": ("multitask_bert.hub_card.push:main", "upload a saved model folder to the Hugging Face Hub"),
}
USER_ERRORS = (ValueError, OSError)
USER_ERROR_STATUS = 2
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
    module_name, function_name = COMMANDS[args.command][0].split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    try:
        return command(args.arguments) or 0
    except USER_ERRORS as error:
        if args.debug:
            raise
        message = " ".join(str(error).split())
        print(f"multitask-bert {args.command}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())
