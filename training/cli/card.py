"""`multitask-bert card`: write the model card of a saved model folder again from what it holds."""

from __future__ import annotations

from pathlib import Path

from ...hub_card.model_card import (
    CARD_FILE,
    CARD_INPUTS_FILE,
    LOSS_PLOT_FILE,
    TRAINER_STATE_FILE,
    load_card_inputs,
    write_model_card,
)
from .parsing import CommandParser


def main(argv: list[str]) -> int:
    """
    `multitask-bert card MODEL_DIR [--repo-id ID] [--sts-benchmark PATH]`: write the model card again from what the
    folder holds, optionally with the sentence embedding scored on an STS Benchmark file.
    """
    parser = CommandParser(
        prog="multitask-bert card",
        description=f"Write MODEL_DIR/{CARD_FILE} and {LOSS_PLOT_FILE} from config.json, {CARD_INPUTS_FILE} "
        f"and {TRAINER_STATE_FILE}.",
    )
    parser.add_argument("model_dir", type=Path, help="a saved model folder")
    parser.add_argument("--repo-id", help="Hub repo the card is for (used in the usage snippets)")
    parser.add_argument(
        "--sts-benchmark",
        type=Path,
        help="STS Benchmark file (or folder with test.tsv): score the model's sentence embedding for the card",
    )
    args = parser.parse_args(argv)
    inputs = load_card_inputs(args.model_dir)
    if args.repo_id:
        inputs["repo_id"] = args.repo_id
    if args.sts_benchmark:
        from ..sts_benchmark import read_sts_benchmark, sts_benchmark_spearman

        sts_pairs = read_sts_benchmark(args.sts_benchmark)
        split = sts_pairs.path.stem
        earlier = inputs.get("embedding_similarity") or {}
        inputs["embedding_similarity"] = {
            "split": split,
            "spearman_cosine": sts_benchmark_spearman(args.model_dir, sts_pairs),
            # The starting model's score, measured at training time, only if it was on the same split.
            "base_spearman_cosine": earlier.get("base_spearman_cosine") if earlier.get("split") == split else None,
        }
    write_model_card(args.model_dir, **inputs)
    print(f"Wrote {args.model_dir / CARD_FILE}")
    return 0
