"""The `multitask-bert` command line: one subcommand per job, each parsed by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import version

# name -> ("module:function", help). Each function takes the remaining argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("multitask_bert.training.commands:train", "fine-tune a model (default: embedded data and backbone)"),
    "evaluate": ("multitask_bert.training.commands:evaluate_model", "score a trained model on a data split"),
    "export": ("multitask_bert.training.export:main", "export a saved model to ONNX (optionally int8) and check it"),
    "predict": ("multitask_bert.training.predict:main", "print intent and entities of texts as JSON lines"),
    "card": ("multitask_bert.hub_card.model_card:main", "write the model card of a saved model folder"),
    "push": ("multitask_bert.hub_card.push:main", "upload a saved model folder to the Hugging Face Hub"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multitask-bert",
        description="Train, evaluate and use one encoder for sentence embeddings, intents and entities.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('multitask-bert')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)
        parser.print_help()
        return 0
    target, _ = COMMANDS[argv[0]]
    module_name, function_name = target.split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    return command(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
