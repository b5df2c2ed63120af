"""Growing a trained model: new CLINC150 intents from a few examples (no training) or by continued training, against
retraining from scratch; and two new ATIS slot types by continued training.

    python benchmarks/grow.py                       # train what is missing (cached), then score every run
    python benchmarks/grow.py --train-only --runs base-s0 base-s1
    python benchmarks/grow.py --report-only         # score the cached runs only
    python benchmarks/grow.py --tables-only         # the markdown tables from results/grow.json
    python benchmarks/grow.py --train-only --runs timing-scratch-s0 &  # and at the same time, in another shell:
    python benchmarks/grow.py --train-only --runs timing-continue-all-s0
    python benchmarks/grow.py --timing-only         # then: their side-by-side seconds into results/grow.json

CLINC150 (in-scope intents, out-of-scope detection on): per seed, 10 intents drawn at random are held out; `base`
trains on the other 140 with `multitask-bert train`. Then the 10 come back:
- by examples: `model.add_examples` with 5, 10 or all (100) train utterances of each, no training;
- by continued training (`multitask-bert train --model-name-or-path BASE`, the heads grow): on the new intents'
  train utterances only (`continue-new`), on them with distillation towards the base model's answers on the old
  intents (`continue-distill`, `--distill_old_labels 1`), on them plus a replay sample of 10 utterances per old
  intent (`continue-replay`), or on that replay data with the encoder frozen (`continue-frozen`: only the heads
  learn), or on all 150 intents' train utterances for one epoch (`continue-all`: the old and new data together);
- against `scratch`: all 150 trained from scratch with the same recipe.
Scores on the test split: in-scope accuracy on the new intents' queries and on the old ones (answering out-of-scope
is wrong), out-of-scope recall, and the wall time of each way. ATIS: `atis-base` without two slot types (their tags
become `O`), `atis-continue` on the train sentences that have them, `atis-scratch` on everything.

Data: `../shared/data/clinc150/full` and `../shared/data/atis`; the filtered copies go to the cache folder, never into
the repository. Results: `benchmarks/results/grow.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from out_of_scope import cli_arguments, read_jsonl  # benchmarks/out_of_scope.py: the same CLI runs

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "benchmarks" / "results"
CACHE_DIR = Path.home() / ".cache" / "multitask-bert-benchmarks" / "grow"
OUT_OF_SCOPE = "oos"
SEEDS = (0, 1, 2)
NEW_INTENTS = 10
EXAMPLE_COUNTS = (5, 10, None)  # None: all of a new intent's train utterances
REPLAY_PER_INTENT = 10
# The examples' rule is chosen on validation among these scales of a prototype's expected error (`ExampleMemory`),
# within these bounds (points), the goal's for old intents and a cap for out-of-scope recall.
ERROR_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
MAX_OLD_DROP = 0.5
MAX_OUT_OF_SCOPE_DROP = 2.0
# benchmarks/out_of_scope.py's CLINC150 recipe: the command line's defaults when these runs were made (layer-wise
# decay 0.9) for 5 epochs, no evaluation in training.
CLINC_RECIPE = {"num_train_epochs": 5, "layerwise_lr_decay": 0.9}
# No distillation: the default for data without the old labels since these runs (`continue-distill` turns it on).
CONTINUE_RECIPE = {"num_train_epochs": 3, "layerwise_lr_decay": 0.9, "distill_old_labels": 0.0}
# ATIS: the accuracy benchmark's recipe (a CRF), 10 epochs; two slot types held out.
ATIS_RECIPE = {"num_train_epochs": 10, "use_crf": True, "layerwise_lr_decay": 1.0}
ATIS_NEW_SLOTS = ("airline_code", "flight_days")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def clinc_split(split: str) -> list[dict]:
    return read_jsonl(DATA_ROOT / "clinc150" / "full" / f"{split}.jsonl")


def new_intents(seed: int) -> list[str]:
    """The 10 intents held out of the base model for `seed`."""
    intents = sorted({row["intent"] for row in clinc_split("train")} - {OUT_OF_SCOPE})
    return sorted(random.Random(seed).sample(intents, NEW_INTENTS))


def runs() -> dict[str, dict]:
    """Every training run by name: what it trains on, from what, with which settings."""
    table = {}
    for seed in SEEDS:
        table[f"base-s{seed}"] = {"data": "base", "seed": seed, "settings": CLINC_RECIPE}
        table[f"scratch-s{seed}"] = {"data": "scratch", "seed": seed, "settings": CLINC_RECIPE}
        for variant in ("new", "replay"):
            table[f"continue-{variant}-s{seed}"] = {
                "data": f"continue-{variant}",
                "seed": seed,
                "settings": CONTINUE_RECIPE,
                "from": f"base-s{seed}",
            }
        table[f"continue-frozen-s{seed}"] = {
            "data": "continue-replay",
            "seed": seed,
            "settings": {**CONTINUE_RECIPE, "freeze_backbone": True},
            "from": f"base-s{seed}",
        }
        table[f"continue-all-s{seed}"] = {  # the old and the new data together, one epoch
            "data": "scratch",
            "seed": seed,
            "settings": {**CONTINUE_RECIPE, "num_train_epochs": 1},
            "from": f"base-s{seed}",
        }
        table[f"continue-distill-s{seed}"] = {
            "data": "continue-new",
            "seed": seed,
            "settings": {**CONTINUE_RECIPE, "distill_old_labels": 1.0},
            "from": f"base-s{seed}",
        }
    # Timed side by side (started together, one thread each): retraining from scratch against continuing on all data.
    table["timing-scratch-s0"] = {**table["scratch-s0"]}
    table["timing-continue-all-s0"] = {**table["continue-all-s0"]}
    table["atis-base-s0"] = {"data": "atis-base", "seed": 0, "settings": ATIS_RECIPE}
    table["atis-scratch-s0"] = {"data": "atis-scratch", "seed": 0, "settings": ATIS_RECIPE}
    table["atis-continue-s0"] = {
        "data": "atis-continue",
        "seed": 0,
        "settings": {"num_train_epochs": 5, "layerwise_lr_decay": 1.0},
        "from": "atis-base-s0",
    }
    return table


def prepare_data(kind: str, seed: int, cache_dir: Path) -> Path:
    """The data folder of a run (written once into the cache)."""
    folder = cache_dir / "data" / f"{kind}-s{seed}"
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    if kind.startswith("atis"):
        prepare_atis(kind, folder)
    else:
        held_out = set(new_intents(seed))
        splits = {split: clinc_split(split) for split in ("train", "validation", "test")}
        train = [row for row in splits["train"] if row["intent"] != OUT_OF_SCOPE]
        old = [row for row in train if row["intent"] not in held_out]
        new = [row for row in train if row["intent"] in held_out]
        validation = splits["validation"]
        if kind == "base":
            train_rows = old
            validation = [row for row in validation if row["intent"] not in held_out]
        elif kind == "scratch":
            train_rows = train
        elif kind == "continue-new":
            train_rows = new
        else:  # continue-replay
            by_intent: dict[str, list[dict]] = {}
            for row in old:
                by_intent.setdefault(row["intent"], []).append(row)
            generator = random.Random(seed)
            replay = [row for rows in by_intent.values() for row in generator.sample(rows, REPLAY_PER_INTENT)]
            train_rows = new + replay
        write_jsonl(folder / "train.jsonl", train_rows)
        write_jsonl(folder / "validation.jsonl", validation)
        write_jsonl(folder / "test.jsonl", splits["test"])
    (folder / "done").write_text("")
    return folder


def prepare_atis(kind: str, folder: Path) -> None:
    """ATIS in JointBERT layout; `atis-base` tags the held-out slot types `O` everywhere, `atis-continue` keeps only
    the train sentences that have one of them (validation and test keep every sentence and tag)."""
    source = DATA_ROOT / "atis"
    held_out = {f"{prefix}-{slot}" for slot in ATIS_NEW_SLOTS for prefix in ("B", "I")}
    for split in ("train", "dev", "test"):
        parts = {
            part: (source / split / part).read_text(encoding="utf-8").splitlines()
            for part in ("seq.in", "seq.out", "label")
        }
        rows = list(zip(parts["seq.in"], parts["seq.out"], parts["label"], strict=True))
        if kind == "atis-base":
            rows = [
                (words, " ".join("O" if tag in held_out else tag for tag in tags.split()), label)
                for words, tags, label in rows
            ]
        elif kind == "atis-continue" and split == "train":
            rows = [row for row in rows if held_out & set(row[1].split())]
        (folder / split).mkdir(parents=True)
        for index, part in enumerate(("seq.in", "seq.out", "label")):
            (folder / split / part).write_text("".join(row[index] + "\n" for row in rows), encoding="utf-8")


def train_run(name: str, spec: dict, cache_dir: Path) -> Path:
    """Train the run with `multitask-bert train` unless its model folder is complete; returns the folder."""
    model_dir = cache_dir / "models" / name
    done = model_dir / "benchmark_run.json"
    if done.exists():
        return model_dir
    data_dir = prepare_data(spec["data"], spec["seed"], cache_dir)
    settings = {**spec["settings"], "seed": spec["seed"], "eval_strategy": "no", "save_strategy": "no"}
    command = ["multitask-bert", "train", "--data", str(data_dir), "--output_dir", str(model_dir)]
    if "from" in spec:
        command += ["--model_name_or_path", str(train_run(spec["from"], runs()[spec["from"]], cache_dir))]
    if not spec["data"].startswith("atis"):
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


def test_outputs(model, tokenizer, texts: list[str]) -> dict:
    """One batched forward pass over `texts`, split into words as the pipeline splits them: the intent head's
    calibrated probabilities, its out-of-scope scores, and the vectors that stored examples are compared with."""
    import torch

    from multitask_bert.modeling.pipeline_multitask_bert import answerable_logits, word_spans

    config = model.config
    parts: dict[str, list] = {"probabilities": [], "scores": [], "features": [], "embeddings": []}
    with torch.no_grad():
        for start in range(0, len(texts), 128):
            chunk = texts[start : start + 128]
            words = [[text[begin:end] for begin, end in word_spans(tokenizer, text)] for text in chunk]
            batch = tokenizer(words, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
            output = model(**batch, output_sentence_features=True)
            labels, temperature = config.task_labels("intent"), config.task_temperature("intent")
            parts["probabilities"].append(answerable_logits(labels, output.logits["intent"], temperature).softmax(-1))
            if output.out_of_scope_scores:
                parts["scores"].append(output.out_of_scope_scores["intent"])
            parts["features"].append(output.sentence_features)
            parts["embeddings"].append(output.sentence_embedding)
    return {name: torch.cat(values) for name, values in parts.items() if values}


def clinc_answers(model, tokenizer, texts: list[str], outputs: dict, check: int = 200) -> list[dict]:
    """The pipeline's intent answers for `texts` from their `test_outputs` (the model's stored examples compared by
    the model's own `ExampleMemory`), through the pipeline's own `postprocess`; the first `check` texts also go
    through the pipeline itself, and must get the same answers."""
    from transformers import pipeline

    nlu = pipeline("joint-intent-ner", model=model, tokenizer=tokenizer)
    distances = None
    if "intent" in model.example_memories:
        memory = model.example_memories["intent"]
        whitening = model.out_of_scope_scorers["intent"].whitening if memory.metric == "mahalanobis" else None
        distances = memory(outputs["features"], outputs["embeddings"], whitening)
    answers = []
    for index, text in enumerate(texts):
        window = {
            "text": text,
            "intent_probabilities": outputs["probabilities"][index : index + 1],
            "intent_out_of_scope_score": outputs["scores"][index : index + 1],
        }
        if distances is not None:
            window["intent_example_distances"] = distances[index : index + 1]
        answers.append(nlu.postprocess([window])["intent"])
    for answer, result in zip(answers[:check], nlu(texts[:check], batch_size=64), strict=True):
        expected = result["intent"]
        if answer["label"] != expected["label"] or answer.get("source") != expected.get("source"):
            raise AssertionError(f"Batched answer {answer} differs from the pipeline's {expected}.")
    return answers


def clinc_scores(answers: list[dict], rows: list[dict], new: set[str]) -> dict[str, float]:
    """In-scope accuracy on the new intents' test queries and on the old ones (out-of-scope answers are wrong),
    out-of-scope recall, and how often the examples path answered an old intent's query."""
    groups: dict[str, list] = {"new": [], "old": [], "oos": []}
    for answer, row in zip(answers, rows, strict=True):
        kind = "oos" if row["intent"] == OUT_OF_SCOPE else "new" if row["intent"] in new else "old"
        groups[kind].append((answer, row["intent"]))
    scores = {
        "new_accuracy": sum(answer["label"] == gold for answer, gold in groups["new"]) / len(groups["new"]),
        "old_accuracy": sum(answer["label"] == gold for answer, gold in groups["old"]) / len(groups["old"]),
        "out_of_scope_recall": sum(answer["label"] == gold for answer, gold in groups["oos"]) / len(groups["oos"]),
    }
    scores["old_from_examples"] = sum(answer.get("source") == "examples" for answer, _ in groups["old"]) / len(
        groups["old"]
    )
    return scores


def closed_set_scores(model, outputs: dict, rows: list[dict], new: set[str]) -> dict[str, float]:
    """The head's best label alone (no out-of-scope answer, no examples) on the in-scope test queries: accuracy over
    all of them and over the new and the old intents' queries."""
    labels = model.config.task_labels("intent")
    best = [labels[index] for index in outputs["probabilities"].argmax(dim=-1).tolist()]
    pairs = [(label, row["intent"]) for label, row in zip(best, rows, strict=True) if row["intent"] != OUT_OF_SCOPE]
    scores = {"closed_set_accuracy": sum(label == gold for label, gold in pairs) / len(pairs)}
    for kind, chosen in (
        ("new", [pair for pair in pairs if pair[1] in new]),
        ("old", [p for p in pairs if p[1] not in new]),
    ):
        scores[f"closed_set_{kind}_accuracy"] = sum(label == gold for label, gold in chosen) / len(chosen)
    return scores


def score_clinc_seed(seed: int, cache_dir: Path) -> dict:
    """Every way of bringing the seed's 10 intents back, scored by the pipeline on the test split; the examples ways
    for every `ERROR_SCALES` value on the validation split too (`choose_error_scale` picks one there)."""
    from multitask_bert import MultiTaskBertModel
    from multitask_bert.training.loading import load_tokenizer

    new = set(new_intents(seed))
    splits = {split: clinc_split(split) for split in ("validation", "test")}
    texts = {split: [row["text"] for row in rows] for split, rows in splits.items()}
    train = [row for row in clinc_split("train") if row["intent"] in new]
    results: dict = {"new_intents": sorted(new)}
    base_dir = cache_dir / "models" / f"base-s{seed}"
    tokenizer = load_tokenizer(base_dir)
    base = MultiTaskBertModel.from_pretrained(base_dir).eval()
    base_outputs = {split: test_outputs(base, tokenizer, split_texts) for split, split_texts in texts.items()}
    for count in (0, *EXAMPLE_COUNTS):
        model = MultiTaskBertModel.from_pretrained(base_dir).eval()
        seconds = 0.0
        if count != 0:
            chosen = []
            for intent in sorted(new):
                pool = [row for row in train if row["intent"] == intent]
                chosen += random.Random(seed).sample(pool, count) if count else pool
            start = time.perf_counter()
            model.add_examples("intent", [row["text"] for row in chosen], [row["intent"] for row in chosen], tokenizer)
            seconds = time.perf_counter() - start
        name = "base" if count == 0 else f"examples-{count or 'all'}"
        results[name] = {"seconds": seconds}
        for error_scale in ERROR_SCALES if count != 0 else (None,):
            if error_scale is not None:
                model.set_example_error_scale("intent", error_scale)
            for split, rows in splits.items():
                check = 200 if split == "test" and error_scale in (None, ERROR_SCALES[0]) else 0
                answers = clinc_answers(model, tokenizer, texts[split], base_outputs[split], check)
                scores = clinc_scores(answers, rows, new)
                results[name].setdefault(split, {})[str(error_scale)] = scores
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    ways = ("new", "distill", "replay", "frozen", "all")
    for run in (*(f"continue-{way}-s{seed}" for way in ways), f"scratch-s{seed}"):
        model_dir = cache_dir / "models" / run
        if not (model_dir / "benchmark_run.json").exists():
            continue
        model = MultiTaskBertModel.from_pretrained(model_dir).eval()
        seconds = json.loads((model_dir / "benchmark_run.json").read_text())["train_seconds"]
        name = run.removesuffix(f"-s{seed}")
        run_tokenizer = load_tokenizer(model_dir)
        outputs = test_outputs(model, run_tokenizer, texts["test"])
        results[name] = {**closed_set_scores(model, outputs, splits["test"], new), "seconds": seconds}
        if "scores" in outputs:  # models of benchmarks/out_of_scope.py's cache have no detector: closed set only
            answers = clinc_answers(model, run_tokenizer, texts["test"], outputs)
            results[name].update(clinc_scores(answers, splits["test"], new))
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    return results


def error_scale_grid(per_seed: list[dict], split: str) -> dict[str, dict[str, float]]:
    """Per error scale, the mean over seeds of the 10-example way's scores on `split`, and the drops of its old-intent
    accuracy and out-of-scope recall from the base model's (in points)."""
    grid = {}
    for error_scale in per_seed[0]["examples-10"][split]:
        mean = {
            key: 100 * statistics.mean(seed["examples-10"][split][error_scale][key] for seed in per_seed)
            for key in per_seed[0]["examples-10"][split][error_scale]
        }
        for key, drop in (("old_accuracy", "old_drop"), ("out_of_scope_recall", "out_of_scope_drop")):
            mean[drop] = 100 * statistics.mean(seed["base"][split]["None"][key] for seed in per_seed) - mean[key]
        grid[error_scale] = mean
    return grid


def choose_error_scale(per_seed: list[dict]) -> str:
    """The error scale of the examples' prototypes, chosen on validation with 10 examples per new intent: the best
    new-intent accuracy among the scales that lower old-intent accuracy by at most `MAX_OLD_DROP` points and
    out-of-scope recall by at most `MAX_OUT_OF_SCOPE_DROP` (the goal's bounds); the smaller scale on ties; the least
    old-intent drop if no scale keeps both bounds."""
    grid = error_scale_grid(per_seed, "validation")
    allowed = [
        scale
        for scale, scores in grid.items()
        if scores["old_drop"] <= MAX_OLD_DROP and scores["out_of_scope_drop"] <= MAX_OUT_OF_SCOPE_DROP
    ]
    if not allowed:
        return min(grid, key=lambda scale: grid[scale]["old_drop"])
    return max(allowed, key=lambda scale: (grid[scale]["new_accuracy"], -float(scale)))


def at_error_scale(per_seed: list[dict], error_scale: str) -> list[dict]:
    """The seeds' results with each way's test scores flat, the examples ways' at `error_scale`."""
    flat = []
    for seed in per_seed:
        ways = {}
        for way, scores in seed.items():
            if isinstance(scores, dict) and "test" in scores:
                chosen = "None" if way == "base" else error_scale
                ways[way] = {**scores["test"][chosen], "seconds": scores["seconds"]}
            else:
                ways[way] = scores
        flat.append(ways)
    return flat


def score_atis(cache_dir: Path) -> dict:
    """Entity F1 of the two held-out slot types and overall, and intent accuracy, on the ATIS test split."""
    results = {}
    for run in ("atis-base-s0", "atis-continue-s0", "atis-scratch-s0"):
        model_dir = cache_dir / "models" / run
        if not (model_dir / "benchmark_run.json").exists():
            continue
        command = ["multitask-bert", "evaluate", str(model_dir), "--data", str(DATA_ROOT / "atis"), "--json"]
        metrics = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        name = run.removesuffix("-s0")
        results[name] = {
            "new_slot_f1": {slot: metrics.get(f"entity_{slot}_f1", 0.0) for slot in ATIS_NEW_SLOTS},
            "entity_f1": metrics["entity_f1"],
            "intent_accuracy": metrics["intent_accuracy"],
            "seconds": json.loads((model_dir / "benchmark_run.json").read_text())["train_seconds"],
        }
        print(f"{run}: {results[name]}", flush=True)
    return results


def side_by_side_seconds(cache_dir: Path) -> dict[str, float]:
    """The wall times of the `timing-*` runs, started together on one thread each."""
    seconds = {}
    for run in ("timing-scratch-s0", "timing-continue-all-s0"):
        done = cache_dir / "models" / run / "benchmark_run.json"
        if done.exists():
            seconds[run.removeprefix("timing-").removesuffix("-s0")] = json.loads(done.read_text())["train_seconds"]
    return seconds


def summary(per_seed: list[dict]) -> dict[str, dict[str, str]]:
    """Mean ± std (population) over seeds of every score of every way that each seed has."""
    ways = [way for way in per_seed[0] if way != "new_intents" and all(way in seed for seed in per_seed)]
    table = {}
    for way in ways:
        table[way] = {}
        for key in per_seed[0][way]:
            scale = 1 if key == "seconds" else 100
            values = [seed[way][key] * scale for seed in per_seed]
            table[way][key] = f"{statistics.mean(values):.2f} ± {statistics.pstdev(values):.2f}"
    return table


def markdown(results: dict) -> str:
    error_scale = choose_error_scale(results["clinc"])
    table = summary(at_error_scale(results["clinc"], error_scale))
    lines = [
        "# Growing a trained model (benchmarks/grow.py)",
        "",
        f"CLINC150 full, {len(results['clinc'])} seed(s) (10 intents held out of the base model per seed), mean ± std; "
        "accuracies in %. The model's answers, as the pipeline gives them: accuracy over the new and the old intents' "
        "in-scope test queries (an out-of-scope answer is wrong), recall over the 1,000 out-of-scope test queries; "
        "seconds: embedding the examples, or the whole `multitask-bert train` run. The examples ways at error scale "
        f"{error_scale}, chosen on validation (the next table).",
        "",
        "| way | new intents | old intents | out-of-scope recall | old queries answered from examples | seconds |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for way, scores in table.items():
        if "new_accuracy" in scores:
            lines.append(
                f"| {way} | {scores['new_accuracy']} | {scores['old_accuracy']} | {scores['out_of_scope_recall']} | "
                f"{scores['old_from_examples']} | {scores['seconds']} |"
            )
    lines += [
        "",
        "The examples' rule on the **validation** split, 10 examples per new intent, mean over seeds: per error scale "
        "of the prototypes (`ExampleMemory`), new-intent accuracy and the drops from the base model of old-intent "
        f"accuracy and out-of-scope recall (points). Chosen: the best new-intent accuracy with an old drop <= "
        f"{MAX_OLD_DROP} and an out-of-scope drop <= {MAX_OUT_OF_SCOPE_DROP}; the test split's values beside it.",
        "",
        "| error scale | new intents | old drop | out-of-scope drop | test: new intents | test: old drop | "
        "test: out-of-scope drop |",
        "|:---|---:|---:|---:|---:|---:|---:|",
    ]
    test_grid = error_scale_grid(results["clinc"], "test")
    for scale, scores in error_scale_grid(results["clinc"], "validation").items():
        mark = " (chosen)" if scale == error_scale else ""
        test = test_grid[scale]
        lines.append(
            f"| {scale}{mark} | {scores['new_accuracy']:.2f} | {scores['old_drop']:.2f} | "
            f"{scores['out_of_scope_drop']:.2f} | {test['new_accuracy']:.2f} | {test['old_drop']:.2f} | "
            f"{test['out_of_scope_drop']:.2f} |"
        )
    lines += [
        "",
        "The head alone (its best label, no out-of-scope answer) on the in-scope test queries, against retraining "
        "from scratch on all 150 intents (`scratch`: benchmarks/out_of_scope.py's `full-s*` runs, the same recipe):",
        "",
        "| way | all 150 intents | new intents | old intents | seconds |",
        "|:---|---:|---:|---:|---:|",
    ]
    for way, scores in table.items():
        if "closed_set_accuracy" in scores:
            lines.append(
                f"| {way} | {scores['closed_set_accuracy']} | {scores['closed_set_new_accuracy']} | "
                f"{scores['closed_set_old_accuracy']} | {scores['seconds']} |"
            )
    timing = results.get("side_by_side_seconds") or {}
    if len(timing) == 2:
        lines += [
            "",
            f"Timed side by side (seed 0, both started together on one thread each, sharing the machine's load): "
            f"retraining from scratch {timing['scratch']:.0f} s, continuing on all the data for one epoch "
            f"{timing['continue-all']:.0f} s ({timing['continue-all'] / timing['scratch']:.2f} of it; both include the "
            "same passes over the data besides training: teacher vectors, detector fit, calibration, evaluation).",
        ]
    if results.get("atis"):
        lines += [
            "",
            f"ATIS, seed 0: slot types {', '.join(ATIS_NEW_SLOTS)} held out of the base model (tagged `O`).",
            "",
            "| run | " + " | ".join(f"{slot} F1" for slot in ATIS_NEW_SLOTS) + " | entity F1 | intent acc. | seconds |",
            "|:---|" + "---:|" * (len(ATIS_NEW_SLOTS) + 3),
        ]
        for run, scores in results["atis"].items():
            new = " | ".join(f"{100 * scores['new_slot_f1'][slot]:.2f}" for slot in ATIS_NEW_SLOTS)
            lines.append(
                f"| {run} | {new} | {100 * scores['entity_f1']:.2f} | {100 * scores['intent_accuracy']:.2f} | "
                f"{scores['seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", help="train these runs only (default: all)")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--tables-only", action="store_true")
    parser.add_argument("--timing-only", action="store_true", help="add the side-by-side timing runs' seconds only")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args()
    if not (DATA_ROOT / "clinc150").is_dir():
        raise SystemExit(f"No CLINC150 data at {DATA_ROOT / 'clinc150'}.")
    names = args.runs or [name for name in runs() if not name.startswith("timing-")]  # those run side by side
    if not (args.report_only or args.tables_only or args.timing_only):
        for name in names:
            train_run(name, runs()[name], args.cache_dir)
    if args.train_only:
        return
    results_file = RESULTS / "grow.json"
    if args.timing_only:
        results = json.loads(results_file.read_text())
        results["side_by_side_seconds"] = side_by_side_seconds(args.cache_dir)
        results_file.write_text(json.dumps(results, indent=2) + "\n")
    elif not args.tables_only:
        trained = [
            seed for seed in SEEDS if (args.cache_dir / "models" / f"base-s{seed}" / "benchmark_run.json").exists()
        ]
        results = {
            "clinc": [score_clinc_seed(seed, args.cache_dir) for seed in trained],
            "atis": score_atis(args.cache_dir),
            "side_by_side_seconds": side_by_side_seconds(args.cache_dir),
        }
        results_file.write_text(json.dumps(results, indent=2) + "\n")
    results = json.loads(results_file.read_text())
    (RESULTS / "grow.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
