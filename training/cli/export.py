"""`multitask-bert export`: a saved model to ONNX, checked against PyTorch, optionally int8 compared with fp32.

    multitask-bert export MODEL_DIR OUT_DIR [--quantize int8] [--eval-file utterances.txt]

(OUT_DIR positional, as in `optimum-cli export onnx`, or as `--onnx OUT_DIR` / `--output-dir OUT_DIR`)

writes `OUT_DIR/model.onnx` (and `model_int8.onnx`), the config and the tokenizer (plus `crf.safetensors` for CRF
models), checks onnxruntime against PyTorch, and compares int8 with fp32 on evaluation texts.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data import default_data_dir
from ..onnx import export_onnx
from ..onnx.export import MAX_ABS_DIFF
from .parsing import CommandParser


def read_eval_examples(path: str | Path | None) -> list[dict]:
    """Evaluation examples `{"text", ...}`: lines of a text file, or JSONL with gold `intent` and character-span
    `entities` (as the embedded data); default: the embedded dataset's test split."""
    if path is None:
        path = default_data_dir() / "test.jsonl"
    if Path(path).suffix == ".jsonl":
        return [json.loads(line) for line in read_lines(path) if line.strip()]
    return [{"text": text} for text in read_lines(path)]


def read_lines(path: str | Path) -> list[str]:
    """One text per line (line ends stripped, empty lines kept), with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    return path.read_text(encoding="utf-8").splitlines()


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="multitask-bert export", description="Export a saved model to ONNX, check it, optionally quantize it."
    )
    parser.add_argument("model", help="folder (or Hub id) of a saved MultiTaskBert model with its tokenizer")
    parser.add_argument("output", nargs="?", metavar="OUT_DIR", help="folder to write model.onnx and friends")
    parser.add_argument("--onnx", "--output-dir", metavar="OUT_DIR", help="OUT_DIR, as an option")
    parser.add_argument("--quantize", choices=["int8"], help="also write model_int8.onnx (dynamic quantization)")
    parser.add_argument(
        "--eval-file",
        metavar="FILE",
        help="texts (one per line), or JSONL with gold intent and entity spans, to compare int8 with fp32 on; "
        "default: the embedded dataset's test split (with its gold labels)",
    )
    parser.add_argument("--eval-limit", type=int, default=1000, help="compare on at most this many texts")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's recommended one)")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.output and args.onnx and args.output != args.onnx:
        parser.error(f"two output folders: {args.output} and --onnx {args.onnx}; give one")
    output_dir = args.output or args.onnx
    if output_dir is None:
        parser.error("no output folder: give OUT_DIR after MODEL (or --onnx OUT_DIR)")
    eval_texts = eval_gold = None
    if args.quantize:
        examples = read_eval_examples(args.eval_file)[: args.eval_limit]
        eval_texts = [example["text"] for example in examples]
        if examples and all(set(example) - {"text"} for example in examples):  # JSONL with labels
            eval_gold = examples
    report = export_onnx(args.model, output_dir, args.quantize, eval_texts, args.opset, args.batch_size, eval_gold)
    print(f"wrote {report.onnx_path}")
    print(f"onnxruntime vs PyTorch, max abs diff (limit {MAX_ABS_DIFF}):")
    for name, diff in report.max_abs_diff.items():
        print(f"  {name:<24} {diff:.2e}")
    if report.int8_path is not None:
        sizes = (
            f"{report.onnx_path.stat().st_size / 2**20:.1f} MiB -> {report.int8_path.stat().st_size / 2**20:.1f} MiB"
        )
        print(f"wrote {report.int8_path} ({sizes})")
        if report.int8_metrics:
            print(f"int8 vs fp32 on {len(eval_texts)} texts:")
            for name, value in report.int8_metrics.items():
                print(f"  {name:<24} {value:.4f}")
        else:
            print("int8 not compared with fp32: no evaluation texts (pass --eval-file).")
    return 0
