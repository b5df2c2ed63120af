"""`benchmarks/accuracy.py` end to end on ATIS with a tiny backbone and two steps per run: outputs and run cache."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SHARED_DATA

SCRIPT = REPO_ROOT / "benchmarks" / "accuracy.py"
METRICS = {"intent_accuracy", "slot_f1", "sentence_accuracy"}
needs_atis = pytest.mark.skipif(
    not (SHARED_DATA / "atis").exists(), reason=f"the ATIS benchmark data is not at {SHARED_DATA / 'atis'}"
)


def accuracy_script():
    """benchmarks/accuracy.py as a module."""
    return benchmark_module("accuracy")


@pytest.fixture(scope="module")
def run_accuracy(tmp_path_factory, tiny_backbone_dir):
    """Runs accuracy.py on ATIS with the tiny backbone, writing results and cached runs into temporary folders."""
    results_dir, cache_dir = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("cache")

    def run(*arguments: str) -> tuple[Path, Path, str]:
        command = [sys.executable, str(SCRIPT), "--dataset", "atis", "--backbone", str(tiny_backbone_dir)]
        command += ["--max-steps", "2", "--results-dir", str(results_dir), "--cache-dir", str(cache_dir), *arguments]
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        assert finished.returncode == 0, finished.stderr[-3000:]
        return results_dir, cache_dir, finished.stdout

    return run


@needs_atis
def test_main_study_writes_the_fixed_schema_beside_the_published_table(run_accuracy):
    results_dir, cache_dir, printed = run_accuracy("--seeds", "2")
    result = json.loads((results_dir / "accuracy_atis.json").read_text())
    assert {"dataset", "backbone", "recipe", "seeds", "mean", "std", "train_seconds"} <= set(result)
    assert result["dataset"] == "atis" and result["seeds"] == [0, 1] and result["recipe"]["max_steps"] == 2
    assert set(result["mean"]) == set(result["std"]) == METRICS
    assert all(0.0 <= value <= 1.0 for value in result["mean"].values())
    assert [run["seed"] for run in result["runs"]] == [0, 1] and result["train_seconds"] > 0
    assert result["best_on_validation"]["seed"] in (0, 1)
    assert "| JointBERT BERT-base (published, best run) | 97.87 | 95.59 | 88.24 |" in printed
    assert (results_dir / "accuracy_atis.md").read_text().strip() in printed
    trained = [json.loads((path / "benchmark_run.json").read_text()) for path in cache_dir.iterdir()]
    assert {run["seed"] for run in trained if run["settings"] == result["recipe"]} == {0, 1}


def cached_runs(cache_dir: Path) -> dict[str, int]:
    return {path.name: (path / "benchmark_run.json").stat().st_mtime_ns for path in cache_dir.iterdir()}


@needs_atis
def test_main_study_runs_its_ablation_row(run_accuracy):
    results_dir, cache_dir, _ = run_accuracy("--seeds", "2")  # trained by the test above, or here
    before = cached_runs(cache_dir)
    recipe_row = accuracy_script().RECIPE_ROW
    run_accuracy("--study", "ablation", "--seeds", "2", "--variants", recipe_row)
    assert cached_runs(cache_dir) == before  # nothing trained again
    main = json.loads((results_dir / "accuracy_atis.json").read_text())
    row = json.loads((results_dir / "ablation_atis.json").read_text())[recipe_row]
    assert row["settings"] == main["recipe"] and row["train_seconds"] == main["train_seconds"]
    assert [run["validation"] for run in row["runs"]] == [run["validation"] for run in main["runs"]]


@needs_atis
def test_studies_share_cached_runs_and_keep_earlier_rows(run_accuracy):
    first_recipe = "first recipe (CRF, no layer-wise decay)"
    results_dir, cache_dir, _ = run_accuracy("--study", "ablation", "--seeds", "1", "--variants", first_recipe)
    before = cached_runs(cache_dir)

    # BASE at seed 0 is the two-stage row's first stage: only the second stage trains.
    two_stage = "intent head frozen after joint (+3 epochs NER only)"
    run_accuracy("--study", "freezing", "--seeds", "1", "--variants", two_stage)
    after = cached_runs(cache_dir)
    assert {name: after[name] for name in before} == before and len(after) == len(before) + 1
    (new_run,) = set(after) - set(before)
    second_stage = json.loads((cache_dir / new_run / "benchmark_run.json").read_text())
    assert second_stage["settings"]["tasks"] == "ner" and second_stage["settings"]["freeze_heads"] == "intent"

    # "full fine-tuning" is BASE too: nothing trains, and the earlier row stays in the file.
    _, _, printed = run_accuracy("--study", "freezing", "--seeds", "1", "--variants", "full fine-tuning")
    assert cached_runs(cache_dir) == after
    rows = json.loads((results_dir / "freezing_atis.json").read_text())
    assert list(rows) == ["full fine-tuning", two_stage]  # the study's order
    base = json.loads((results_dir / "ablation_atis.json").read_text())[first_recipe]["runs"][0]
    assert rows["full fine-tuning"]["runs"][0]["validation"] == base["validation"]
    # The two-stage row times both of its stages.
    assert rows["full fine-tuning"]["train_seconds"] == base["train_seconds"]
    assert rows[two_stage]["train_seconds"] == pytest.approx(base["train_seconds"] + second_stage["train_seconds"])
    assert set(rows[two_stage]["test"]["mean"]) == METRICS
    assert "| full fine-tuning | 1 |" in printed and (results_dir / "freezing_atis.md").exists()


@needs_atis
def test_unknown_variant_is_refused(run_accuracy):
    with pytest.raises(AssertionError, match="Unknown variants"):
        run_accuracy("--study", "multitask", "--variants", "both")


def test_row_settings_become_train_options_the_parser_reads_back(tmp_path):
    """A dict setting (`--set 'task_weights={"intent": 1, "ner": 2}'`) reaches `train` as JSON, not a Python repr."""
    from transformers import HfArgumentParser

    from multitask_bert import MultiTaskTrainingArguments
    from multitask_bert.training.cli.arguments import ModelArguments

    settings = {"task_weights": {"intent": 1, "ner": 2}, "use_cpu": True, "learning_rate": 2e-4}
    arguments = accuracy_script().cli_arguments(settings) + ["--output_dir", str(tmp_path)]
    parser = HfArgumentParser([ModelArguments, MultiTaskTrainingArguments])
    model_args, parsed = parser.parse_args_into_dataclasses(arguments)
    assert model_args.task_weights == {"intent": 1, "ner": 2}
    assert parsed.use_cpu is True and parsed.learning_rate == 2e-4


@pytest.mark.parametrize("study", ["ablation", "freezing", "multitask"])
def test_committed_study_rows_are_what_the_script_would_run(study):
    """Every row in benchmarks/results has the settings that its name trains now, so a rerun hits the same runs."""
    script = accuracy_script()
    variants = {"ablation": script.ABLATIONS, "freezing": script.FREEZING, "multitask": script.MULTITASK}[study]
    rows = json.loads((REPO_ROOT / "benchmarks" / "results" / f"{study}_atis.json").read_text())
    assert list(rows) == [name for name in variants if name in rows]
    for name, row in rows.items():
        stages = script.stages_of(variants[name])
        assert row["settings"] == (stages if len(stages) > 1 else stages[0]), name


def test_committed_main_results_ran_the_recipe():
    script = accuracy_script()
    result = json.loads((REPO_ROOT / "benchmarks" / "results" / "accuracy_atis.json").read_text())
    assert result["recipe"] == script.stages_of(script.ABLATIONS[script.RECIPE_ROW])[0]


EMBEDDING_SCRIPT = REPO_ROOT / "benchmarks" / "embedding.py"
STS_LINES = [
    "genre\tsource\tscore\tsentence1\tsentence2",
    "captions\tt\t4.8\tA man is playing a guitar.\tA man plays the guitar.",
    "captions\tt\t0.2\tA woman is slicing an onion.\tA man is riding a horse.",
    "captions\tt\t4.2\tKids are playing in the park.\tChildren play outside in a park.",
    "captions\tt\t0.0\tThe stock market fell today.\tA cat sleeps on the sofa.",
    "captions\tt\t3.8\tTwo people are talking.\tTwo men are having a conversation.",
]


def run_embedding(
    tmp_path: Path, tiny_backbone_dir: Path, sts_dir: Path, weights: tuple[str, ...] = ("0", "1"), *options: str
) -> subprocess.CompletedProcess:
    command = [sys.executable, str(EMBEDDING_SCRIPT), "--dataset", "embedded", "--backbone", str(tiny_backbone_dir)]
    command += ["--max-steps", "2", "--weights", *weights, "--sts-dir", str(sts_dir), *options]
    command += ["--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def test_embedding_benchmark_scores_each_weight_with_the_sts_evaluator(tmp_path, tiny_backbone_dir):
    from multitask_bert.training.sts_benchmark import sts_benchmark_spearman

    sts_dir = tmp_path / "sts-b"
    sts_dir.mkdir()
    (sts_dir / "test.tsv").write_text("\n".join(STS_LINES) + "\n", encoding="utf-8")
    printed = run_embedding(tmp_path, tiny_backbone_dir, sts_dir).stdout
    result = json.loads((tmp_path / "results" / "embedding_embedded.json").read_text())
    assert result["backbone_sts_spearman"] == pytest.approx(sts_benchmark_spearman(tiny_backbone_dir, sts_dir))
    assert list(result["rows"]) == ["0", "1"]
    for name, row in result["rows"].items():
        assert row["settings"]["embedding_preservation_weight"] == float(name)
        (run,) = row["runs"]
        run_dirs = [
            path
            for path in (tmp_path / "cache").iterdir()
            if json.loads((path / "benchmark_run.json").read_text())["settings"] == row["settings"]
        ]
        assert len(run_dirs) == 1
        assert run["sts_spearman"] == pytest.approx(sts_benchmark_spearman(run_dirs[0], sts_dir), abs=1e-6)
        assert set(run["test"]) == METRICS and row["sts_spearman"]["mean"] == run["sts_spearman"]
    assert (tmp_path / "results" / "embedding_embedded.md").read_text().strip() in printed

    run_embedding(tmp_path, tiny_backbone_dir, sts_dir, ("0.5",))  # another weight joins the earlier rows
    run_embedding(tmp_path, tiny_backbone_dir, sts_dir, ("1",), "--sentence-head-pooling", "attention")
    rows = json.loads((tmp_path / "results" / "embedding_embedded.json").read_text())["rows"]
    assert list(rows) == ["0", "0.5", "1", "1, heads: attention pooling"] and rows["1"] == result["rows"]["1"]
    own_pooling = rows["1, heads: attention pooling"]
    assert own_pooling["settings"] == {**result["rows"]["1"]["settings"], "sentence_head_pooling": "attention"}
    run_dir = next(
        path
        for path in (tmp_path / "cache").iterdir()
        if json.loads((path / "benchmark_run.json").read_text())["settings"] == own_pooling["settings"]
    )
    assert json.loads((run_dir / "config.json").read_text())["sentence_head_pooling"] == "attention"

    # `--set` adds a train option to the row; runs without it train in fp32 whatever the CPU's default.
    run_embedding(tmp_path, tiny_backbone_dir, sts_dir, ("1",), "--set", "bf16=true")
    rows = json.loads((tmp_path / "results" / "embedding_embedded.json").read_text())["rows"]
    assert rows["1, bf16=true"]["settings"] == {**result["rows"]["1"]["settings"], "bf16": True}
    for name, bf16 in (("1", False), ("1, bf16=true", True)):
        run_dir = next(
            path
            for path in (tmp_path / "cache").iterdir()
            if json.loads((path / "benchmark_run.json").read_text())["settings"] == rows[name]["settings"]
        )
        assert ("- Precision: mixed, bfloat16" in (run_dir / "README.md").read_text()) is bf16


def test_embedding_benchmark_skips_without_the_sts_data(tmp_path, tiny_backbone_dir):
    printed = run_embedding(tmp_path, tiny_backbone_dir, tmp_path / "absent").stdout
    assert f"skipped: {tmp_path / 'absent'} is missing" in printed
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_profile_step_splits_the_step_time_into_groups_for_both_precisions(tmp_path):
    """`benchmarks/profile_step.py` on the embedded data (no ATIS folder there): every group's share, both runs."""
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "profile_step.py"), "--data", str(tmp_path / "absent")]
    finished = subprocess.run([*command, "--steps", "1", "--rows", "3"], capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:]
    sections = finished.stdout.split("## ")[1:]
    assert [section.split(":")[0] for section in sections] == ["fp32", "bf16 autocast"]
    for section in sections:
        shares = dict((group, float(share)) for share, group in re.findall(r"^ *(\d+\.\d)%  (\S.*)$", section, re.M))
        assert set(shares) == {*profile_step_groups(), "other"} and sum(shares.values()) == pytest.approx(100, abs=1)
        assert shares["matmuls (linear layers)"] > 0


def profile_step_groups() -> list[str]:
    return list(benchmark_module("profile_step").GROUPS)


def benchmark_module(name: str):
    """benchmarks/<name>.py as a module (with benchmarks/ on sys.path while it imports, as when run as a script)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    return module


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="the probe reads Linux's /proc")
def test_peak_rss_probe_measures_the_child_alone():
    """speed.py's probe reports what its child holds, however large the process that starts it: Linux carries
    `ru_maxrss` across `exec`, so the old probe reported this test process's size."""
    speed = benchmark_module("speed")
    ballast = b"x" * (1024 * 2**20)  # this process now holds more than 1 GB
    empty = speed.peak_rss_mb("pass")
    known = speed.peak_rss_mb("data = b'y' * (300 * 2**20)")
    del ballast
    assert empty < 100
    assert 295 <= known - empty < 320  # 300 MiB of bytes, give or take the interpreter's own pages


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="the probe reads Linux's /proc")
def test_data_memory_loads_the_rows_it_reports(tmp_path):
    """data_memory.py's child really loads the file (eager and streamed) and the file has the rows it says."""
    data_memory = benchmark_module("data_memory")
    path = tmp_path / "rows.jsonl"
    data_memory.write_rows(path, 30)
    assert len(path.read_text().splitlines()) == 30
    for streaming in (False, True):
        script = data_memory.load_script(path, tmp_path / "cache", streaming)
        result = subprocess.run(
            [sys.executable, "-c", script + "print(len(list(data['train'])))"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[-1] == "30"
