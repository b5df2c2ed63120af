"""`multitask-bert train` with its defaults (only `--data`, `--seed` and the output folder given), beside the best
recipe the other benchmarks found (chosen on validation, embedding preservation on) and the published rows chosen on
dev: ATIS, SNIPS, CLINC150 (intent only, in-scope queries) and the embedded demo data.

    python benchmarks/defaults.py [--datasets atis snips clinc150 embedded] [--seeds 3]

Writes `benchmarks/results/defaults.{json,md}` (rows of earlier runs are kept). Each run's model folder and scores
stay in `--cache-dir`, so a rerun trains only what is missing. Data: `../shared/data`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from out_of_scope import OUT_OF_SCOPE, read_jsonl, write_jsonl  # benchmarks/out_of_scope.py: the same CLINC150 files

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "benchmarks" / "results"
CACHE_DIR = Path.home() / ".cache" / "multitask-bert-benchmarks" / "defaults"
DATASETS = ("atis", "snips", "clinc150", "embedded")
METRICS = {"intent acc": "intent_accuracy", "slot F1": "entity_f1", "sentence acc": "sentence_accuracy"}
DEFAULTS_ROW = "CLI defaults, no options"
# The embedded data's defaults before the recipe rule, measured here beside the new ones.
EARLIER_DEFAULTS = {"use_crf": "false", "layerwise_lr_decay": "0.9", "load_best_model_at_end": "false"}
DEMO_EXCEPTION_OFF = "the rule without the demo exception (20 epochs)"
ROWS = {
    "embedded": {
        DEFAULTS_ROW: {},
        "earlier defaults (3 epochs, no CRF, layer-wise decay 0.9, last epoch)": EARLIER_DEFAULTS,
        DEMO_EXCEPTION_OFF: {"num_train_epochs": "20"},
    },
}
# Rows that run fewer seeds than asked (their runs take much longer).
ROW_SEEDS = {DEMO_EXCEPTION_OFF: 1}


def data_dir(dataset: str, cache_dir: Path) -> Path | None:
    """The `--data` folder of `dataset` (None: the embedded data); CLINC150 without its out-of-scope queries."""
    if dataset == "embedded":
        return None
    if dataset != "clinc150":
        return DATA_ROOT / dataset
    folder = cache_dir / "data" / "clinc150-in-scope"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "validation", "test"):
            rows = read_jsonl(DATA_ROOT / "clinc150" / "full" / f"{split}.jsonl")
            write_jsonl(folder / f"{split}.jsonl", [row for row in rows if row["intent"] != OUT_OF_SCOPE])
        (folder / "done").write_text("")
    return folder


def train_run(dataset: str, row: str, options: dict[str, str], seed: int, cache_dir: Path) -> dict:
    """One `multitask-bert train` run (unless cached): its scores per split, seconds, precision and chosen epoch."""
    model_dir = cache_dir / "models" / f"{dataset}-{re.sub(r'[^a-z0-9]+', '-', row.lower()).strip('-')}-s{seed}"
    done = model_dir / "benchmark_run.json"
    if not done.exists():
        data = data_dir(dataset, cache_dir)
        command = ["multitask-bert", "train", *(["--data", str(data)] if data else [])]
        # Checkpoints are kept (the training is the same) to score the last epoch's beside the one chosen on validation.
        command += ["--output_dir", str(model_dir), "--seed", str(seed), "--overwrite_output_dir", "true"]
        # Two kept: with one, the Trainer deletes every checkpoint but the best at the end.
        command += ["--keep_checkpoints", "true", "--save_total_limit", "2"]
        for name, value in options.items():
            command += [f"--{name}", value]
        log = cache_dir / "logs" / f"{model_dir.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log.open("w") as output:
            subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        last_epoch_test = score_last_checkpoint(model_dir, data)
        inputs = json.loads((model_dir / "model_card_inputs.json").read_text())
        evaluations = [entry for entry in inputs["log_history"] if "eval_loss" in entry]
        done.write_text(
            json.dumps(
                {
                    "seconds": seconds,
                    "threads": os.environ.get("OMP_NUM_THREADS", "all"),
                    "hyperparameters": inputs["hyperparameters"],
                    "validation_per_epoch": [
                        {
                            key: value
                            for key, value in entry.items()
                            if key in ("epoch", *(f"eval_{m}" for m in METRICS.values()))
                        }
                        for entry in evaluations
                    ],
                    "scores": json.loads((model_dir / "eval_results.json").read_text()),
                    "last_epoch_test": last_epoch_test,
                },
                indent=2,
            )
            + "\n"
        )
    return json.loads(done.read_text())


def score_last_checkpoint(model_dir: Path, data: Path | None) -> dict | None:
    """Test scores of the last epoch's checkpoint (`multitask-bert evaluate`), then the checkpoints go; None when the
    run kept no other checkpoint than the one it chose."""
    checkpoints = sorted(
        (model_dir / "checkpoints").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1])
    )
    scores = None
    if checkpoints:
        command = ["multitask-bert", "evaluate", str(checkpoints[-1]), "--split", "test", "--json", "true"]
        command += ["--data", str(data)] if data else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        scores = json.loads(output)
    shutil.rmtree(model_dir / "checkpoints", ignore_errors=True)
    return scores


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.pstdev(values), "n": len(values)}


def summarize(runs: list[dict]) -> dict:
    """Per split and metric, mean / std / n over `runs`; mean seconds."""
    summary = {"seconds": statistics.mean(run["seconds"] for run in runs)}
    for split in ("validation", "test"):
        summary[split] = {
            metric: mean_std([run["scores"][split][metric] for run in runs])
            for metric in METRICS.values()
            if metric in runs[0]["scores"][split]
        }
    paired = [run for run in runs if run.get("last_epoch_test")]
    if paired:  # the same runs' test scores with the checkpoint chosen on validation, and with the last one
        summary["paired_seeds"] = [run["seed"] for run in paired]
        for name, scores in (
            ("chosen_test", lambda run: run["scores"]["test"]),
            ("last_test", lambda run: run["last_epoch_test"]),
        ):
            summary[name] = {
                metric: mean_std([scores(run)[metric] for run in paired])
                for metric in METRICS.values()
                if metric in paired[0]["last_epoch_test"]
            }
    return summary


def best_embedding_kept_row(name: str) -> tuple[str, dict]:
    """The row of `results/<name>.json` with embedding preservation on and the best validation sentence accuracy."""
    rows = json.loads((RESULTS / f"{name}.json").read_text())["rows"]
    kept = {row: scores for row, scores in rows.items() if scores["settings"]["embedding_preservation_weight"] == 1}
    row = max(kept, key=lambda row: kept[row]["validation"]["mean"]["sentence_accuracy"])
    scores = kept[row]
    test = {
        METRICS[label]: {
            "mean": scores["test"]["mean"][key],
            "std": scores["test"]["std"][key],
            "n": len(scores["seeds"]),
        }
        for label, key in (
            ("intent acc", "intent_accuracy"),
            ("slot F1", "slot_f1"),
            ("sentence acc", "sentence_accuracy"),
        )
    }
    return f"best recipe on validation, embedding kept (`{name}.json` row {row!r})", {"test": test}


def clinc_recipe_row() -> tuple[str, dict]:
    """The closed-set in-scope accuracy of `out_of_scope.py`'s full CLINC150 models (5 epochs, 3 seeds)."""
    runs = json.loads((RESULTS / "out_of_scope.json").read_text())["runs"]
    values = [
        runs[f"full-s{seed}"]["closed_set"]["intent_in_scope_accuracy"] for seed in range(3) if f"full-s{seed}" in runs
    ]
    return "out_of_scope.py recipe (5 epochs, layer-wise decay 0.9), closed set", {
        "test": {"intent_accuracy": mean_std(values)}
    }


def published_rows(dataset: str) -> dict[str, dict]:
    """The rows of ../shared/data/README.md whose runs chose on the dev split."""
    readme = (DATA_ROOT / "README.md").read_text()
    honest = readme.split("Runs that choose on the dev split", 1)[-1]
    rows = {}
    for name, model, intent, slot, sentence, source in re.findall(
        r"^\| (SNIPS|ATIS) \| ([^|]+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([^|]+?) \|$", honest, re.MULTILINE
    ):
        if name.lower() == dataset:
            values = dict(zip(METRICS.values(), (intent, slot, sentence), strict=True))
            rows[f"{model} (published, {source})"] = {
                "test": {metric: {"mean": float(value) / 100, "n": 1} for metric, value in values.items()}
            }
    return rows


def cell(scores: dict | None) -> str:
    if scores is None:
        return "–"
    text = f"{100 * scores['mean']:.2f}"
    return text + (f" ± {100 * scores['std']:.2f}" if scores.get("n", 1) > 1 else "")


def headline(scores: dict) -> str:
    """The metric a row is judged by: sentence accuracy, else intent accuracy (CLINC150)."""
    return "sentence_accuracy" if "sentence_accuracy" in scores else "intent_accuracy"


def selection_table(results: dict) -> str:
    """Markdown: per row that kept its checkpoints, the test headline of the checkpoint chosen on validation and of
    the last one, over the same seeds."""
    lines = [
        "| data | row | seeds | metric | checkpoint chosen on validation | last epoch |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, rows in results.items():
        for name, row in rows.items():
            if "last_test" in row:
                metric = headline(row["last_test"])
                lines.append(
                    f"| {dataset} | {name} | {len(row['paired_seeds'])} | test {metric.replace('_', ' ')} | "
                    f"{cell(row['chosen_test'][metric])} | {cell(row['last_test'][metric])} |"
                )
    return "\n".join(lines)


def table(results: dict) -> str:
    lines = [
        "| data | row | seeds | "
        + " | ".join(f"test {label}" for label in METRICS)
        + " | validation sentence acc | s per run |"
    ]
    lines.append("|" + "---|" * (6 + len(METRICS)))
    for dataset, rows in results.items():
        for name, row in rows.items():
            test = row["test"]
            seeds = max((scores.get("n", 1) for scores in test.values()), default=1)
            validation = row.get("validation", {}).get("sentence_accuracy")
            seconds = f"{row['seconds']:.0f}" if "seconds" in row else "–"
            cells = " | ".join(cell(test.get(metric)) for metric in METRICS.values())
            lines.append(f"| {dataset} | {name} | {seeds} | {cells} | {cell(validation)} | {seconds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3, help="Runs with seeds 0..N-1.")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args()
    missing = [name for name in args.datasets if name != "embedded" and not (DATA_ROOT / name).exists()]
    if missing:
        sys.exit(f"{', '.join(missing)}: not in {DATA_ROOT} (the benchmark data lives in ../shared/data).")
    results_file = args.results_dir / "defaults.json"
    for dataset in args.datasets:
        rows = {}
        for row, options in ROWS.get(dataset, {DEFAULTS_ROW: {}}).items():
            runs = []
            for seed in range(min(args.seeds, ROW_SEEDS.get(row, args.seeds))):
                runs.append({"seed": seed, **train_run(dataset, row, options, seed, args.cache_dir)})
                print(f"{dataset} {row} seed {seed}: {json.dumps(runs[-1]['scores']['test'])}", flush=True)
            rows[row] = {**summarize(runs), "options": options, "runs": runs}
        if dataset in ("atis", "snips"):
            name, recipe = best_embedding_kept_row(f"embedding_{dataset}")
            rows[name] = recipe
            rows.update(published_rows(dataset))
        elif dataset == "clinc150":
            name, recipe = clinc_recipe_row()
            rows[name] = recipe
        # Read again: another process may have written other datasets meanwhile.
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
        results[dataset] = rows
        results_file.write_text(json.dumps(results, indent=2) + "\n")
        (args.results_dir / "defaults.md").write_text(table(results) + "\n\n" + selection_table(results) + "\n")
    print((args.results_dir / "defaults.md").read_text())


if __name__ == "__main__":
    main()
