"""Does the sentence embedding survive training? STS-B test Spearman and task scores, with and without preservation.

    python benchmarks/embedding.py --dataset embedded|atis|snips [--weights 0 1] [--seeds 0 1 2]
        [--sentence-head-pooling attention] [--set bf16=true sentence_aware_token_heads=true]

Each row trains with `multitask-bert train --embedding_preservation_weight W` on the dataset's recipe (the main job's
defaults for the embedded data, the accuracy recipe for ATIS, the same at 10 epochs for SNIPS, as in README), then
scores the saved model's embedding on the STS Benchmark test split (`../shared/data/sts-b`) with
sentence-transformers' `EmbeddingSimilarityEvaluator`, beside the packaged backbone's own score.
`--sentence-head-pooling` gives the sentence-level heads their own pooling (rows named "W, heads: MODE pooling");
`--set KEY=VALUE` adds any other `train` option to the recipe (rows named "W, KEY=VALUE"). Writes
`results/embedding_<dataset>.json` (rows of weights run earlier are kept) and a markdown table beside it. Runs are
cached as in `accuracy.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from accuracy import (
    ABLATIONS,
    BASE,
    CACHE_DIR,
    DATA_ROOT,
    EMBEDDED_DATA,
    METRICS,
    RECIPE_ROW,
    RESULTS,
    cli_arguments,
    run_key,
    summarize,
    train_once,
)

from multitask_bert import default_backbone_path
from multitask_bert.training.sts_benchmark import sts_benchmark_spearman

STS_DIR = DATA_ROOT / "sts-b"
RECIPES = {
    # The main job's settings when these rows ran (`train` now adds a CRF and picks the checkpoint on validation).
    EMBEDDED_DATA: {"num_train_epochs": 3, "layerwise_lr_decay": 0.9, "use_crf": False},
    "atis": {**BASE, **ABLATIONS[RECIPE_ROW]},
    "snips": {**BASE, "num_train_epochs": 10},
}
STS_RESULT = "sts_benchmark.json"


def setting(text: str) -> tuple[str, object]:
    """`"bf16=true"` -> `("bf16", True)`: a JSON value where the text is one, else the text."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key in ("seed", "eval_strategy", "save_strategy"):
        raise argparse.ArgumentTypeError(f"{key} is the benchmark's own (--seeds for seeds)")
    try:
        return key, json.loads(value.lower() if value.lower() in ("true", "false") else value)
    except json.JSONDecodeError:
        return key, value


def cached_sts(model_dir: Path, sts_dir: Path) -> float:
    """The STS-B test Spearman of a trained run, computed once and kept in its folder."""
    done = model_dir / STS_RESULT
    if not done.exists():
        done.write_text(json.dumps({"spearman_cosine": sts_benchmark_spearman(model_dir, sts_dir)}) + "\n")
    return json.loads(done.read_text())["spearman_cosine"]


def weight_row(
    dataset: str, settings: dict, seeds: list[int], backbone: str | None, cache_dir: Path, sts_dir: Path
) -> dict:
    """Train `settings` at every seed; scores per split (mean, std), STS-B Spearman and seconds, and the runs."""
    runs = []
    for seed in seeds:
        result, took = train_once(dataset, [settings], seed, backbone, cache_dir)
        sts = cached_sts(cache_dir / run_key(dataset, [settings], seed, backbone), sts_dir)
        scores = {
            split: {metric: result[split][key] for metric, key in METRICS.items() if key in result[split]}
            for split in ("validation", "test")
            if split in result
        }
        runs.append({"seed": seed, "train_seconds": took, "sts_spearman": sts, **scores})
        print(
            f"weight {settings['embedding_preservation_weight']} seed {seed} ({took:.0f} s): STS-B {sts:.4f}, "
            f"{json.dumps(scores)}",
            flush=True,
        )
    sts_values = [run["sts_spearman"] for run in runs]
    return {
        "settings": settings,
        "seeds": seeds,
        "train_seconds": statistics.mean(run["train_seconds"] for run in runs),
        "sts_spearman": {"mean": statistics.mean(sts_values), "std": statistics.pstdev(sts_values)},
        **{
            split: dict(zip(("mean", "std"), summarize(runs, split), strict=True))
            for split in ("validation", "test")
            if split in runs[0]
        },
        "runs": runs,
    }


def cell(mean: float | None, std: float | None, seeds: int, scale: float = 100, digits: int = 2) -> str:
    """`mean ± std` (the std only over several seeds), scaled; `–` when there is no score."""
    if mean is None:
        return "–"
    return f"{scale * mean:.{digits}f}" + (f" ± {scale * std:.{digits}f}" if seeds > 1 else "")


def table(result: dict) -> str:
    """
    Markdown: the backbone's STS-B score, then one row per weight with STS-B, test scores, validation sentence
    accuracy (what a choice between rows may look at) and train seconds.
    """
    lines = [
        "| embedding preservation weight | seeds | STS-B test Spearman | test intent acc | test slot F1 | "
        "test sentence acc | validation sentence acc | train s |",
        "|---|---|---|---|---|---|---|---|",
        f"| backbone before training | – | {result['backbone_sts_spearman']:.4f} | – | – | – | – | – |",
    ]
    for name, row in result["rows"].items():
        seeds = len(row["seeds"])
        sts = cell(row["sts_spearman"]["mean"], row["sts_spearman"]["std"], seeds, scale=1, digits=4)
        tasks = [cell(row["test"]["mean"].get(metric), row["test"]["std"].get(metric), seeds) for metric in METRICS]
        validation = row.get("validation", {"mean": {}, "std": {}})
        tasks.append(
            cell(validation["mean"].get("sentence_accuracy"), validation["std"].get("sentence_accuracy"), seeds)
        )
        lines.append(f"| {name} | {seeds} | {sts} | " + " | ".join(tasks) + f" | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=list(RECIPES), default=EMBEDDED_DATA)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0], help="Preservation weights to run.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="Seeds to run (default: 0).")
    parser.add_argument("--sentence-head-pooling", help="The sentence-level heads' own pooling (default: shared).")
    parser.add_argument(
        "--set", type=setting, nargs="+", default=[], metavar="KEY=VALUE", help="More `train` options for every row."
    )
    parser.add_argument("--max-steps", type=int, help="Stop every training run after N steps: a smoke run only.")
    parser.add_argument("--backbone", help="Encoder name or path (default: the packaged all-MiniLM-L6-v2).")
    parser.add_argument("--sts-dir", type=Path, default=STS_DIR, help=f"STS Benchmark folder (default {STS_DIR}).")
    parser.add_argument("--backbone-sts", type=float, help="The backbone's STS-B score, if known (else computed).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help=f"Where to write (default {RESULTS}).")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help=f"Trained runs (default {CACHE_DIR}).")
    args = parser.parse_args()
    if not args.sts_dir.exists():
        print(f"skipped: {args.sts_dir} is missing (the STS Benchmark lives in ../shared/data/sts-b).")
        return
    if args.dataset != EMBEDDED_DATA and not (DATA_ROOT / args.dataset).exists():
        sys.exit(f"{DATA_ROOT / args.dataset} is missing: the benchmark data lives in ../shared/data.")
    recipe = {**RECIPES[args.dataset], **({"max_steps": args.max_steps} if args.max_steps else {})}
    if args.sentence_head_pooling:
        recipe["sentence_head_pooling"] = args.sentence_head_pooling
    heads = f", heads: {args.sentence_head_pooling} pooling" if args.sentence_head_pooling else ""
    recipe.update(args.set)
    heads += "".join(f", {key}={cli_arguments({key: value})[1]}" for key, value in args.set)
    rows = {
        f"{weight:g}{heads}": weight_row(
            args.dataset,
            {**recipe, "embedding_preservation_weight": weight},
            args.seeds,
            args.backbone,
            args.cache_dir,
            args.sts_dir,
        )
        for weight in args.weights
    }
    name = f"embedding_{args.dataset}"
    earlier_file = args.results_dir / f"{name}.json"
    if earlier_file.exists():  # rows of other weights, from earlier runs of the script, stay
        rows = {**json.loads(earlier_file.read_text())["rows"], **rows}
    rows = dict(sorted(rows.items(), key=lambda row: (float(row[0].split(",")[0]), row[0])))
    result = {
        "dataset": args.dataset,
        "backbone": args.backbone or "sentence-transformers/all-MiniLM-L6-v2 (packaged)",
        "backbone_sts_spearman": args.backbone_sts
        or sts_benchmark_spearman(args.backbone or default_backbone_path(), args.sts_dir),
        "recipe": recipe,
        "rows": rows,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results_dir / f"{name}.md").write_text(table(result) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
