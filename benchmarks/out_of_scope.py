"""Out-of-scope detection on CLINC150, and the open-intent protocol on CLINC150 and ATIS, with `multitask-bert train`.

    python benchmarks/out_of_scope.py                      # train what is missing (cached), then score every run
    python benchmarks/out_of_scope.py --runs full-s0 small-s0 --train-only
    python benchmarks/out_of_scope.py --report-only        # score the cached runs only
    python benchmarks/out_of_scope.py --tables-only        # the markdown tables from results/out_of_scope.json

Every run trains once with the command line (its model folder stays in `--cache-dir`); scoring then fits every
out-of-scope score of `multitask_bert.training.out_of_scope` on the run's train split, chooses thresholds on
validation, and scores the test split. Results: `benchmarks/results/out_of_scope.json` and `.md`. Data:
`../shared/data/clinc150` and `../shared/data/atis`; the filtered copies that a protocol needs are written to the
cache folder, never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "benchmarks" / "results"
CACHE_DIR = Path.home() / ".cache" / "multitask-bert-benchmarks" / "out_of_scope"
OUT_OF_SCOPE = "oos"

# The CLINC150 recipe: the command line's defaults when these runs were made (layer-wise decay 0.9, heads at 10x the
# encoder's rate, embedding preservation on) for 5 epochs, no evaluation during training.
CLINC_RECIPE = {"num_train_epochs": 5, "layerwise_lr_decay": 0.9}
# ATIS: the accuracy benchmark's recipe (a CRF), 10 epochs.
ATIS_RECIPE = {"num_train_epochs": 10, "use_crf": True, "layerwise_lr_decay": 1.0}
OPEN_INTENT_RATIOS = (0.25, 0.5, 0.75)


def runs() -> dict[str, dict]:
    """Every run by name: its data (`source`, protocol options), seed and training settings."""
    table = {}
    for seed in (0, 1, 2):
        table[f"full-s{seed}"] = {"data": {"variant": "full", "train_oos": False}, "seed": seed, **_clinc()}
    table["full-no-preservation-s0"] = {
        "data": {"variant": "full", "train_oos": False},
        "seed": 0,
        **_clinc(embedding_preservation_weight=0.0),
    }
    table["full-oos-train-s0"] = {"data": {"variant": "full", "train_oos": True}, "seed": 0, **_clinc()}
    for variant in ("small", "imbalanced"):
        table[f"{variant}-s0"] = {"data": {"variant": variant, "train_oos": False}, "seed": 0, **_clinc()}
    for seed in (0, 1, 2):
        for ratio in OPEN_INTENT_RATIOS:
            table[f"open-clinc-{int(ratio * 100)}-s{seed}"] = {
                "data": {"open_intent": "clinc150", "ratio": ratio},
                "seed": seed,
                **_clinc(),
            }
    for ratio in OPEN_INTENT_RATIOS:
        table[f"open-atis-{int(ratio * 100)}-s0"] = {
            "data": {"open_intent": "atis", "ratio": ratio},
            "seed": 0,
            "settings": dict(ATIS_RECIPE),
        }
    return table


def _clinc(**changes) -> dict:
    return {"settings": {**CLINC_RECIPE, **changes}}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def known_intents(intents: list[str], ratio: float, seed: int) -> set[str]:
    """The open-intent protocol's known intents: `ratio` of them (rounded), drawn at random with `seed`."""
    return set(random.Random(seed).sample(sorted(intents), k=round(len(intents) * ratio)))


def prepare_data(name: str, spec: dict, seed: int, cache_dir: Path) -> Path:
    """The run's data folder: CLINC150 as it is (or without its out-of-scope train queries), or an open-intent copy
    in which unknown intents are relabelled `oos` in validation and test and left out of train."""
    data = spec["data"]
    folder = cache_dir / "data" / name
    if "variant" in data and data["train_oos"]:
        return DATA_ROOT / "clinc150" / data["variant"]
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if "variant" in data:
        source = DATA_ROOT / "clinc150" / data["variant"]
        for split in ("train", "validation", "test"):
            rows = read_jsonl(source / f"{split}.jsonl")
            if split == "train":
                rows = [row for row in rows if row["intent"] != OUT_OF_SCOPE]
            write_jsonl(folder / f"{split}.jsonl", rows)
    elif data["open_intent"] == "clinc150":
        source = DATA_ROOT / "clinc150" / "full"
        train = [row for row in read_jsonl(source / "train.jsonl") if row["intent"] != OUT_OF_SCOPE]
        known = known_intents(list({row["intent"] for row in train}), data["ratio"], seed)
        write_jsonl(folder / "train.jsonl", [row for row in train if row["intent"] in known])
        for split in ("validation", "test"):
            rows = read_jsonl(source / f"{split}.jsonl")
            write_jsonl(
                folder / f"{split}.jsonl",
                [{**row, "intent": row["intent"] if row["intent"] in known else OUT_OF_SCOPE} for row in rows],
            )
    else:
        source = DATA_ROOT / "atis"
        train_intents = (source / "train" / "label").read_text().split()
        known = known_intents(list(set(train_intents)), data["ratio"], seed)
        for split in ("train", "dev", "test"):
            lines = {
                part: (source / split / part).read_text(encoding="utf-8").splitlines()
                for part in ("seq.in", "seq.out", "label")
            }
            keep = [split != "train" or label in known for label in lines["label"]]
            (folder / split).mkdir()
            lines["label"] = [label if label in known else OUT_OF_SCOPE for label in lines["label"]]
            for part, content in lines.items():
                kept = [line for line, kept in zip(content, keep, strict=True) if kept]
                (folder / split / part).write_text("\n".join(kept) + "\n", encoding="utf-8")
    (folder / "done").write_text("")
    return folder


def cli_arguments(settings: dict) -> list[str]:
    arguments = []
    for key, value in settings.items():
        arguments += [f"--{key}", json.dumps(value) if isinstance(value, bool) else str(value)]
    return arguments


def train_run(name: str, spec: dict, cache_dir: Path) -> Path:
    """Train the run with `multitask-bert train` unless its model folder is complete; returns the folder."""
    model_dir = cache_dir / "models" / name
    done = model_dir / "benchmark_run.json"
    if done.exists():
        return model_dir
    data_dir = prepare_data(name, spec, spec["seed"], cache_dir)
    settings = {**spec["settings"], "seed": spec["seed"], "eval_strategy": "no", "save_strategy": "no"}
    command = ["multitask-bert", "train", "--data", str(data_dir), "--output_dir", str(model_dir)]
    command += ["--out_of_scope_label", OUT_OF_SCOPE]
    command += cli_arguments(settings) + ["--disable_tqdm", "true", "--overwrite_output_dir", "true"]
    log = cache_dir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as output:
        subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    done.write_text(json.dumps({"spec": spec, "train_seconds": seconds, "data": str(data_dir)}) + "\n")
    return model_dir


METHODS = ("msp", "energy", "mahalanobis", "knn")
DEFAULT_METHOD_NAME = "mahalanobis"  # training/out_of_scope.py's DEFAULT_METHOD, chosen from the table below
IN_SCOPE_SHARES = (0.9, 0.95, 0.97, 0.98, 0.99)
STS_RUNS = ("full-s0", "full-s1", "full-s2", "full-no-preservation-s0", "full-oos-train-s0")


def score_run(name: str, cache_dir: Path) -> dict:
    """Fit every out-of-scope score on the run's train split; per method, its validation and test AUROC / FPR95 and,
    per threshold rule (in-scope shares, youden), the test decisions' scores; calibration before and after."""
    import evaluate
    import torch

    from multitask_bert import MultiTaskBertModel, MultiTaskDataCollator, load_data, tokenize_dataset
    from multitask_bert.modeling.pipeline_multitask_bert import answerable_logits
    from multitask_bert.training.loading import load_tokenizer
    from multitask_bert.training.metric import METRICS_PATH
    from multitask_bert.training.out_of_scope import (
        calibrate,
        choose_threshold,
        fit_vectors,
        in_scope_rows,
        out_of_scope_scores,
        split_outputs,
    )
    from multitask_bert.training.sts_benchmark import sts_benchmark_spearman

    model_dir = cache_dir / "models" / name
    run = json.loads((model_dir / "benchmark_run.json").read_text())
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    tokenizer = load_tokenizer(model_dir)
    labels = model.config.task_labels("intent")
    dataset = load_data(run["data"], None, tokenizer, label_lists={"intent": labels}, out_of_scope={"intent": "oos"})
    features = tokenize_dataset(dataset, tokenizer, 128)
    collate = MultiTaskDataCollator(tokenizer)
    outputs = {split: split_outputs(model, features[split], collate, 64, f"{name} {split}") for split in features}
    metric = evaluate.load(str(METRICS_PATH), keep_in_memory=True)

    def decisions(split: str, scores: torch.Tensor | None, threshold: float | None) -> dict:
        found = outputs[split]
        best = answerable_logits(labels, found.outputs["intent_logits"])
        predicted = [labels[index] for index in best.argmax(dim=-1).tolist()]
        if threshold is not None:
            predicted = [
                "oos" if out else label for label, out in zip(predicted, (scores > threshold).tolist(), strict=True)
            ]
        gold = [
            "oos" if out else (labels[index] if index != -100 else "")
            for index, out in zip(found.labels["intent"].tolist(), found.out_of_scope["intent"].tolist(), strict=True)
        ]
        return metric.compute(
            predictions=[{"labels": [label], "tags": []} for label in predicted],
            references=[{"labels": [label], "tags": []} for label in gold],
            sentence_tasks=["intent"],
            token_tasks=[],
            out_of_scope_labels={"intent": "oos"},
            **({"out_of_scope_scores": {"intent": scores.tolist()}} if scores is not None else {}),
        )

    result = {"train_seconds": run["train_seconds"], "closed_set": decisions("test", None, None)}
    ece = {}
    model.set_temperature("intent", 1.0)
    for stage in ("before", "after"):
        if stage == "after":
            ece["temperature"] = calibrate(model, outputs["validation"])["intent"]
        for split in ("validation", "test"):
            found = outputs[split]
            rows = in_scope_rows(found, "intent", labels)
            logits = answerable_logits(
                labels, found.outputs["intent_logits"][rows], model.config.task_temperature("intent")
            )
            probabilities = logits.softmax(dim=-1)
            right = (probabilities.argmax(dim=-1) == found.labels["intent"][rows]).tolist()
            computed = metric.compute(
                predictions=[{"labels": ["x"], "tags": []}] * len(right),
                references=[{"labels": ["x" if ok else "y"], "tags": []} for ok in right],
                sentence_tasks=["intent"],
                token_tasks=[],
                confidences={"intent": probabilities.max(dim=-1).values.tolist()},
                in_scope_predictions={"intent": ["x"] * len(right)},
            )
            ece[f"{split}_{stage}"] = computed["intent_ece"]
    result["calibration"] = ece
    methods = {}
    for method in METHODS:
        train = outputs["train"]
        rows = in_scope_rows(train, "intent", labels)
        vectors = fit_vectors(
            method,
            train.outputs["sentence_features"][rows],
            train.outputs["sentence_embedding"][rows],
            train.labels["intent"][rows],
        )
        model.set_out_of_scope("intent", "oos", method, None, vectors)
        scores = {split: out_of_scope_scores(model, "intent", outputs[split]) for split in ("validation", "test")}
        validation = outputs["validation"]
        in_scope = scores["validation"][in_scope_rows(validation, "intent", labels)]
        out_of_scope = scores["validation"][validation.out_of_scope["intent"]]
        rules = {f"in_scope_share {share}": ("in_scope_share", share) for share in IN_SCOPE_SHARES}
        if len(out_of_scope):
            rules["youden"] = ("youden", 1.0)
        entry = {"validation": decisions("validation", scores["validation"], None), "rules": {}}
        for rule_name, (rule, share) in rules.items():
            threshold = choose_threshold(in_scope, out_of_scope, rule, share)
            entry["rules"][rule_name] = {
                "threshold": threshold,
                "validation": decisions("validation", scores["validation"], threshold),
                "test": decisions("test", scores["test"], threshold),
            }
        methods[method] = entry
    result["methods"] = methods
    sts = DATA_ROOT / "sts-b"
    if name in STS_RUNS and sts.is_dir():
        result["sts_b_spearman"] = sts_benchmark_spearman(model_dir, sts)
    return result


# Published CLINC150 rows (test, full), fractions or None (not reported): in-scope accuracy without an out-of-scope
# decision, with it, out-of-scope recall, AUROC.
PUBLISHED = [
    ("BERT-base, probability threshold (Larson et al. 2019)", None, 0.962, 0.523, None),
    ("BERT-base, out-of-scope as a 151st class (Larson et al. 2019)", None, 0.969, 0.403, None),
    ("BERT-base + SNGP (Liu et al. 2020)", 0.969, None, None, 0.969),
    ("BERT-base + SNGP, ensemble of 10 (Liu et al. 2020)", 0.975, None, None, 0.973),
]
# ADB (Zhang et al. 2021) on CLINC150, open-intent protocol: known share -> (accuracy, macro F1), fractions.
ADB = {0.25: (0.8759, 0.7719), 0.5: (0.8654, 0.8505), 0.75: (0.8632, 0.8853)}
DEFAULT_RULE = "in_scope_share 0.95"


def mean_std(values: list[float]) -> str:
    """`mean ± std` in percent (population std), or the one value."""
    values = [100 * value for value in values if value is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.pstdev(values):.2f}"


def runs_named(results: dict, prefix: str) -> list[dict]:
    return [run for name, run in results["runs"].items() if re.fullmatch(rf"{prefix}-s\d+", name)]


def decision_row(label: str, runs: list[dict], method: str, rule: str) -> str:
    tests = [run["methods"][method]["rules"][rule]["test"] for run in runs]
    drops = [
        run["closed_set"]["intent_in_scope_accuracy"] - test["intent_in_scope_accuracy"]
        for run, test in zip(runs, tests, strict=True)
    ]
    cells = [
        mean_std([run["closed_set"]["intent_in_scope_accuracy"] for run in runs]),
        mean_std([test["intent_in_scope_accuracy"] for test in tests]),
        mean_std(drops),
        mean_std([test["intent_out_of_scope_recall"] for test in tests]),
        mean_std([test["intent_out_of_scope_f1"] for test in tests]),
        mean_std([test["intent_out_of_scope_auroc"] for test in tests]),
        mean_std([test["intent_out_of_scope_fpr95"] for test in tests]),
        mean_std([run["calibration"]["test_before"] for run in runs]),
        mean_std([run["calibration"]["test_after"] for run in runs]),
        mean_std([run.get("sts_b_spearman") for run in runs]),
    ]
    return f"| {label} | {len(runs)} | " + " | ".join(cells) + " |"


DECISION_HEADER = (
    "| run | seeds | in-scope acc, no rejection | in-scope acc | drop | OOS recall | OOS F1 | AUROC | FPR95 "
    "| ECE before | ECE after | STS-B x100 |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def report_tables(results: dict) -> str:
    """The markdown tables of `out_of_scope.md`: CLINC150 beside the published rows, the score methods and threshold
    rules on validation, the variants, and the open-intent protocol beside ADB."""
    lines = ["# Out-of-scope detection (benchmarks/out_of_scope.py)", ""]
    full = runs_named(results, "full")
    if full:
        lines += ["## Score methods, validation split (CLINC150 full, no out-of-scope train data)", ""]
        lines += ["| method | AUROC | FPR95 |", "|---|---|---|"]
        for method in METHODS:
            validation = [run["methods"][method]["validation"] for run in full]
            lines.append(
                f"| {method} | {mean_std([v['intent_out_of_scope_auroc'] for v in validation])} | "
                f"{mean_std([v['intent_out_of_scope_fpr95'] for v in validation])} |"
            )
        lines += ["", f"## Threshold rules ({DEFAULT_METHOD_NAME}), CLINC150 full", ""]
        lines += [
            "| rule | validation in-scope acc | validation OOS recall | test in-scope acc | test drop "
            "| test OOS recall |",
            "|---|---|---|---|---|---|",
        ]
        for rule in full[0]["methods"][DEFAULT_METHOD_NAME]["rules"]:
            entries = [run["methods"][DEFAULT_METHOD_NAME]["rules"][rule] for run in full]
            drops = [
                run["closed_set"]["intent_in_scope_accuracy"] - entry["test"]["intent_in_scope_accuracy"]
                for run, entry in zip(full, entries, strict=True)
            ]
            lines.append(
                f"| {rule} | {mean_std([e['validation']['intent_in_scope_accuracy'] for e in entries])} | "
                f"{mean_std([e['validation']['intent_out_of_scope_recall'] for e in entries])} | "
                f"{mean_std([e['test']['intent_in_scope_accuracy'] for e in entries])} | {mean_std(drops)} | "
                f"{mean_std([e['test']['intent_out_of_scope_recall'] for e in entries])} |"
            )
    lines += ["", f"## CLINC150 test ({DEFAULT_METHOD_NAME}, {DEFAULT_RULE})", "", DECISION_HEADER]
    variants = {
        "full": "full, no out-of-scope train data",
        "full-oos-train": "full, its 100 out-of-scope train queries in train (never a class)",
        "full-no-preservation": "full, embedding preservation off",
        "small": "small",
        "imbalanced": "imbalanced",
    }
    for prefix, label in variants.items():
        runs = runs_named(results, prefix)
        if runs:
            lines.append(decision_row(label, runs, DEFAULT_METHOD_NAME, DEFAULT_RULE))
    for label, closed, accuracy, recall, auroc in PUBLISHED:
        cells = [mean_std([closed]), mean_std([accuracy]), "", mean_std([recall]), "", mean_std([auroc])] + [""] * 4
        lines.append(f"| {label} | | " + " | ".join(cells) + " |")
    lines += ["", "## Open-intent protocol (known intents drawn per seed; the rest out of scope at test)", ""]
    lines += [
        "| data | known | seeds | accuracy | macro F1 | ADB accuracy | ADB macro F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for data in ("clinc", "atis"):
        for ratio in OPEN_INTENT_RATIOS:
            runs = runs_named(results, f"open-{data}-{int(ratio * 100)}")
            if not runs:
                continue
            tests = [run["methods"][DEFAULT_METHOD_NAME]["rules"][DEFAULT_RULE]["test"] for run in runs]
            adb = ADB.get(ratio) if data == "clinc" else None
            lines.append(
                f"| {'CLINC150' if data == 'clinc' else 'ATIS'} | {int(ratio * 100)}% | {len(runs)} | "
                f"{mean_std([test['intent_accuracy'] for test in tests])} | "
                f"{mean_std([test['intent_macro_f1'] for test in tests])} | "
                f"{mean_std([adb[0]]) if adb else '–'} | {mean_std([adb[1]]) if adb else '–'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", help="run names (default: all); see `runs()`")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="score the cached runs, train none")
    parser.add_argument("--tables-only", action="store_true", help="write the markdown tables from the JSON results")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args()
    table = runs()
    names = args.runs or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {list(table)}")
    if not (DATA_ROOT / "clinc150").is_dir():
        parser.error(f"no CLINC150 data at {DATA_ROOT / 'clinc150'}")
    results_path = RESULTS / "out_of_scope.json"
    if args.tables_only:
        (RESULTS / "out_of_scope.md").write_text(report_tables(json.loads(results_path.read_text())))
        return
    if not args.report_only:
        for name in names:
            print(f"{name}: training (threads: {os.environ.get('OMP_NUM_THREADS', 'all')})", flush=True)
            train_run(name, table[name], args.cache_dir)
            print(f"{name}: done", flush=True)
    if args.train_only:
        return
    RESULTS.mkdir(exist_ok=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": {}}
    for name in names:
        if not (args.cache_dir / "models" / name / "benchmark_run.json").exists():
            print(f"{name}: not trained yet, skipped", flush=True)
            continue
        results["runs"][name] = score_run(name, args.cache_dir)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"{name}: scored", flush=True)
    (RESULTS / "out_of_scope.md").write_text(report_tables(results))


if __name__ == "__main__":
    main()
