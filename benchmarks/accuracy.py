"""Accuracy on ATIS / SNIPS with the project's own `multitask-bert train`, beside the published JointBERT numbers.

    python benchmarks/accuracy.py --dataset atis [--backbone NAME] [--use-crf] [--seeds 3]
    python benchmarks/accuracy.py --dataset atis --study ablation     # recipe search, validation split only
    python benchmarks/accuracy.py --dataset atis --study freezing     # what to freeze, validation + test
    python benchmarks/accuracy.py --dataset atis --study multitask    # joint vs intent-only vs NER-only

The main study writes `benchmarks/results/accuracy_<dataset>.json` (schema in benchmarks/README.md) and prints a
markdown table; the other studies write `<study>_<dataset>.json` and a table. Data comes from `../shared/data`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "benchmarks" / "results"
METRICS = {"intent_accuracy": "intent_accuracy", "slot_f1": "entity_f1", "sentence_accuracy": "sentence_accuracy"}

# The recipe chosen by the ablation on the validation split (see benchmarks/README.md for the table).
RECIPE = {
    "num_train_epochs": 10,
    "learning_rate": 1e-4,
    "head_learning_rate": 1e-3,
    "layerwise_lr_decay": 0.9,
    "per_device_train_batch_size": 32,
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
}
ABLATIONS = {
    "recipe": {},
    "lr 5e-5, no head lr": {"learning_rate": 5e-5, "head_learning_rate": 5e-5},
    "no layer-wise decay": {"layerwise_lr_decay": 1.0},
    "crf": {"use_crf": True},
    "label all sub-tokens": {"label_all_subtokens": True},
    "uncertainty weighting": {"uncertainty_weighting": True},
    "5 epochs": {"num_train_epochs": 5},
}
FREEZING = {
    "full fine-tuning": {},
    "frozen backbone": {"freeze_backbone": True},
    "frozen lower half": {"freeze_layers": 3},
    "layer-wise decay 0.8": {"layerwise_lr_decay": 0.8},
}
MULTITASK = {"joint": {}, "intent only": {"tasks": "intent"}, "NER only": {"tasks": "ner"}}


def published_results() -> dict[str, dict[str, dict[str, float]]]:
    """The JointBERT table of ../shared/data/README.md: {dataset: {model: {metric: fraction}}}."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    readme = (DATA_ROOT / "README.md").read_text()
    for dataset, model, intent, slot, sentence in re.findall(
        r"^\| (SNIPS|ATIS) \| ([^|]+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", readme, flags=re.MULTILINE
    ):
        table.setdefault(dataset.lower(), {})[model] = {
            "intent_accuracy": float(intent) / 100,
            "slot_f1": float(slot) / 100,
            "sentence_accuracy": float(sentence) / 100,
        }
    return table


def cli_arguments(settings: dict) -> list[str]:
    arguments = []
    for key, value in settings.items():
        arguments += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return arguments


def train_once(dataset: str, settings: dict, seed: int, backbone: str | None) -> tuple[dict, float]:
    """One `multitask-bert train` run; returns its {split: metrics} and wall seconds of the whole command."""
    with tempfile.TemporaryDirectory() as output_dir:
        command = ["multitask-bert", "train", "--data", str(DATA_ROOT / dataset), "--output_dir", output_dir]
        command += cli_arguments({**settings, "seed": seed, "eval_strategy": "no", "save_strategy": "no"})
        command += ["--disable_tqdm", "true", "--logging_steps", "50"]
        if backbone:
            command += ["--backbone", backbone]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        return json.loads((Path(output_dir) / "eval_results.json").read_text()), seconds


def summarize(runs: list[dict], split: str) -> tuple[dict, dict]:
    values = {name: [run[split][key] for run in runs if key in run[split]] for name, key in METRICS.items()}
    values = {name: found for name, found in values.items() if found}
    mean = {name: statistics.mean(found) for name, found in values.items()}
    spread = {name: statistics.pstdev(found) for name, found in values.items()}
    return mean, spread


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def study(dataset: str, variants: dict, seeds: list[int], backbone: str | None, splits: list[str]) -> dict:
    rows = {}
    for name, change in variants.items():
        settings = {**RECIPE, **change}
        runs, seconds = [], []
        for seed in seeds:
            result, took = train_once(dataset, settings, seed, backbone)
            runs.append(result)
            seconds.append(took)
            print(f"{name} seed {seed}: {json.dumps({split: result[split] for split in splits})[:300]}", flush=True)
        rows[name] = {
            "settings": settings,
            "train_seconds": statistics.mean(seconds),
            **{split: dict(zip(("mean", "std"), summarize(runs, split), strict=True)) for split in splits},
        }
    return rows


def study_table(rows: dict, splits: list[str]) -> str:
    header = "| variant | " + " | ".join(
        f"{split} {name}" for split in splits for name in ("intent acc", "slot F1", "sentence acc")
    )
    lines = [header + " | train s |", "|" + "---|" * (2 + 3 * len(splits))]
    for name, row in rows.items():
        cells = [percent(row[split]["mean"].get(metric)) for split in splits for metric in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["atis", "snips"], required=True)
    parser.add_argument("--study", choices=["main", "ablation", "freezing", "multitask"], default="main")
    parser.add_argument("--backbone", help="Encoder name or path (default: the packaged all-MiniLM-L6-v2).")
    parser.add_argument("--use-crf", action="store_true")
    parser.add_argument("--seeds", type=int, default=3, help="Runs with seeds 0..N-1.")
    parser.add_argument("--epochs", type=float, help="Override the recipe's number of epochs.")
    parser.add_argument("--variants", nargs="+", help="Run only these rows of the study (names as in the tables).")
    args = parser.parse_args()
    if not (DATA_ROOT / args.dataset).exists():
        sys.exit(f"{DATA_ROOT / args.dataset} is missing: the benchmark data lives in ../shared/data.")
    if args.use_crf:
        RECIPE["use_crf"] = True
    if args.epochs:
        RECIPE["num_train_epochs"] = args.epochs
    seeds = list(range(args.seeds))
    RESULTS.mkdir(parents=True, exist_ok=True)

    if args.study != "main":
        variants = {"ablation": ABLATIONS, "freezing": FREEZING, "multitask": MULTITASK}[args.study]
        unknown = set(args.variants or []) - set(variants)
        if unknown:
            sys.exit(f"Unknown variants {sorted(unknown)}; this study has {list(variants)}.")
        variants = {name: change for name, change in variants.items() if not args.variants or name in args.variants}
        splits = ["validation"] if args.study == "ablation" else ["validation", "test"]
        rows = study(args.dataset, variants, seeds, args.backbone, splits)
        (RESULTS / f"{args.study}_{args.dataset}.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(study_table(rows, splits))
        return

    rows = study(args.dataset, {"recipe": {}}, seeds, args.backbone, ["test"])["recipe"]
    result = {
        "dataset": args.dataset,
        "backbone": args.backbone or "sentence-transformers/all-MiniLM-L6-v2 (packaged)",
        "recipe": RECIPE,
        "seeds": seeds,
        "mean": rows["test"]["mean"],
        "std": rows["test"]["std"],
        "train_seconds": rows["train_seconds"],
    }
    (RESULTS / f"accuracy_{args.dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| model | intent acc | slot F1 | sentence acc |", "|---|---|---|---|"]
    for model, scores in published_results().get(args.dataset, {}).items():
        lines.append(f"| JointBERT {model} (published) | " + " | ".join(percent(scores[m]) for m in METRICS) + " |")
    ours = " | ".join(f"{percent(result['mean'].get(m))} ± {percent(result['std'].get(m))}" for m in METRICS)
    lines.append(f"| multitask-bert MiniLM-L6 ({len(seeds)} seeds) | {ours} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
