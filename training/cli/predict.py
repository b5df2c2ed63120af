"""`multitask-bert predict`: intent, entities (and optionally the embedding) of texts, one JSON line per text.

    multitask-bert predict MODEL_DIR "wake me at 7" "call Anna"
    multitask-bert predict MODEL_DIR --file utterances.txt
    cat utterances.txt | multitask-bert predict MODEL_DIR        (or `-` as the only text)

MODEL_DIR is a saved model, or a folder written by `multitask-bert export` (then onnxruntime runs it). Lines read from a
file or stdin, with the results going to a file or pipe, get a progress bar on stderr (transformers' tqdm:
HF_HUB_DISABLE_PROGRESS_BARS=1 turns it off).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from transformers.utils.logging import tqdm

from ..inference import load_pipeline
from ..onnx import ONNX_FILE
from .parsing import CommandParser


def read_texts(texts: list[str], file: str | None) -> Iterator[str]:
    """The texts given, else the lines of `file`, else the lines of stdin (`-`, or no texts and stdin not a tty)."""
    if file is not None:
        with open(file, encoding="utf-8") as lines:
            yield from (line.rstrip("\r\n") for line in lines)
    elif texts == ["-"] or (not texts and not sys.stdin.isatty()):
        yield from (line.rstrip("\r\n") for line in sys.stdin)
    else:
        yield from texts


def count_lines(file: str | None) -> int | None:
    """How many texts `read_texts` reads from `file` (the progress bar's total); unknown for stdin."""
    if file is None:
        return None
    with open(file, encoding="utf-8") as lines:
        return sum(1 for _ in lines)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="multitask-bert predict",
        description="Print every task's prediction for each text as one JSON line (line i answers input line i).",
    )
    parser.add_argument("model", help="saved model folder or Hub id, or a folder written by `export --onnx`")
    parser.add_argument("texts", nargs="*", help="texts to label; `-` or none: read lines from stdin")
    parser.add_argument("--file", help="read one text per line from this file (empty lines give empty results)")
    parser.add_argument(
        "--onnx-file",
        help=f"run this ONNX file of MODEL's folder (e.g. model_int8.onnx); default: "
        f"{ONNX_FILE} when the folder has no PyTorch weights",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top-k", type=int, help="list the k best intents instead of the best one")
    parser.add_switch("--embedding", help="add the sentence embedding to each line (default: false)")
    parser.add_argument(
        "--out-of-scope-threshold",
        type=float,
        help="answer out-of-scope above this score instead of the model's saved threshold",
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (default: the pipeline's choice)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Texts may come before or after the options (`MODEL --onnx-file F "text" "text"`)."""
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.file is not None and args.texts:
        parser.error("give texts or --file, not both")
    if args.file is None and not args.texts and sys.stdin.isatty():
        parser.error("no texts: give them as arguments, with --file, or on stdin")
    if args.file is not None and not Path(args.file).is_file():
        parser.error(f"no such file: {args.file}")
    predictor = load_pipeline(args.model, args.onnx_file, args.device)
    options = {"batch_size": args.batch_size, "return_embedding": args.embedding}
    if args.top_k is not None:
        options["top_k"] = args.top_k
    if args.out_of_scope_threshold is not None:
        options["out_of_scope_threshold"] = args.out_of_scope_threshold
    results = predictor(read_texts(args.texts, args.file), **options)
    if args.texts in ([], ["-"]) and not sys.stdout.isatty():  # lines from a file or stdin, results to a file or pipe
        results = tqdm(results, total=count_lines(args.file), desc="predict", unit="text")
    for result in results:
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0
