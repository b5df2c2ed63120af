"""README's commands and examples are the ones that work, and the links of README, docs/ and benchmarks/ resolve."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

from conftest import REPO_ROOT, tiny_model
from hub_server import HubTestServer

README = (REPO_ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent  # where this environment's `multitask-bert` console script is
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "benchmarks" / "README.md"]
# Written by someone else, separately: README links it; its absence is reported by its own (skipping) test.
WRITTEN_SEPARATELY = REPO_ROOT / "docs" / "ARCHITECTURE.md"
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")


def code_blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def python_block(marker: str) -> str:
    """README's one python block that contains `marker`."""
    blocks = [block for block in code_blocks("python") if marker in block]
    assert len(blocks) == 1, f"README should have exactly one python block with {marker!r}, has {len(blocks)}"
    return blocks[0]


def bash_line(prefix: str) -> str:
    """README's one bash line that starts with `prefix` (its comment cut off)."""
    lines = [
        line.split("  #")[0].strip()
        for block in code_blocks("bash")
        for line in block.splitlines()
        if line.startswith(prefix)
    ]
    assert len(lines) == 1, f"README should have exactly one bash line starting with {prefix!r}, has {lines}"
    return lines[0]


def environment(cwd: Path, **settings: str) -> dict[str, str]:
    """This process's environment without Hub credentials, with a module cache of its own under `cwd`."""
    env = {name: value for name, value in os.environ.items() if name not in TOKEN_VARIABLES}
    return {**env, "HF_MODULES_CACHE": str(cwd / ".hf_modules"), **settings}


def run_example(code: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    """Run a README example as written, in a fresh process in `cwd`."""
    env = environment(cwd, **settings)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def hub_settings(hub: HubTestServer, home: Path) -> dict[str, str]:
    """Point huggingface_hub at the Hub test double (tests/hub_server.py), logged in with a test token."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",  # the double speaks LFS only
        "HF_TOKEN": "hf_readmetoken",
    }


def save_tiny_model(folder: Path, tokenizer) -> int:
    """An untrained tiny model with the packaged tokenizer, saved as `multitask-bert train` saves; its hidden size."""
    model = tiny_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.config.encoder.hidden_size


@pytest.fixture
def hub():
    with HubTestServer() as server:
        yield server


def quickstart_folder() -> str:
    """The folder README's train line writes, which the quickstart then loads and pushes."""
    arguments = shlex.split(bash_line("multitask-bert train --output-dir"))
    return arguments[arguments.index("--output-dir") + 1]


def test_quickstart_python_block_runs_as_written(tmp_path, tokenizer):
    folder = quickstart_folder()
    example = python_block('pipeline("joint-intent-ner"')
    assert f'pipeline("joint-intent-ner", model="{folder}", trust_remote_code=True)' in example
    assert f'SentenceTransformer("{folder}", trust_remote_code=True)' in example
    assert "push" not in example  # the push is a bash line of its own, tested below
    hidden_size = save_tiny_model(tmp_path / folder, tokenizer)

    result = run_example(example, tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip().splitlines()
    prediction = ast.literal_eval(printed[0])
    # The output shown in README's comment has the structure of the real one.
    shown = ast.literal_eval(
        "\n".join(line.removeprefix("#").strip() for line in example.splitlines() if line.startswith("#"))
    )
    assert set(prediction) == set(shown) == {"intent", "entities", "text"}
    assert set(prediction["intent"]) == set(shown["intent"]) == {"label", "score"}
    assert prediction["text"] == shown["text"]
    assert prediction["intent"]["label"] in tiny_model().config.task_labels("intent")
    for entity in prediction["entities"] + shown["entities"]:
        assert set(entity) == {"entity_group", "word", "start", "end", "score"}
        assert prediction["text"][entity["start"] : entity["end"]] == entity["word"]
    assert printed[-1] == f"(2, {hidden_size})"  # two texts, one embedding each
    assert re.search(r"print\(embeddings\.shape\)  # \(2, 384\)", example)  # the packaged backbone's width


def test_quickstart_push_line_publishes_the_folder(tmp_path, tokenizer, hub):
    folder = quickstart_folder()
    arguments = shlex.split(bash_line("multitask-bert push"))
    assert arguments[2] == folder
    save_tiny_model(tmp_path / folder, tokenizer)

    command = [str(BIN / "multitask-bert"), *arguments[1:]]
    env = environment(tmp_path, **hub_settings(hub, tmp_path / "hf_home"))
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    files = hub.files(arguments[3])
    assert {"config.json", "model.safetensors", "modeling_multitask_bert.py", "README.md"} <= set(files)
    assert f'pipeline("joint-intent-ner", model="{arguments[3]}", trust_remote_code=True)' in README


def assistant_records(count: int, offset: int) -> list[dict]:
    """Small JSONL records of two intents with TIME and PERSON spans, as `load_data` reads them."""
    names, hours = ["Anna", "Ben", "Chloe", "Dev", "Eve", "Farid"], ["6am", "7am", "noon", "9pm", "5pm", "8am"]
    records = []
    for index in range(offset, offset + count):
        name, hour = names[index % len(names)], hours[index % len(hours)]
        if index % 2:
            text = f"wake me at {hour}"
            spans = [(text.index(hour), hour, "TIME")]
            intent = "set_alarm"
        else:
            text = f"remind me to call {name} at {hour}"
            spans = [(text.index(name), name, "PERSON"), (text.index(hour), hour, "TIME")]
            intent = "set_reminder"
        entities = [{"start": start, "end": start + len(word), "label": label} for start, word, label in spans]
        records.append({"text": text, "intent": intent, "entities": entities})
    return records


@pytest.mark.slow
def test_python_training_block_runs_as_written(tmp_path, hub):
    """README's Python training path as written: the packaged backbone on a small JSONL folder, pushed to the double."""
    example = python_block("MultiTaskTrainer.from_data(")
    data_dir = re.search(r'load_data\("([^"]+)"', example).group(1)
    repo_id = re.search(r'push_to_hub\("[^"]+", "([^"]+)"\)', example).group(1)
    model_dir = re.search(r'trainer\.save_model\("([^"]+)"\)', example).group(1)
    (tmp_path / data_dir).mkdir()
    for split, count, offset in [("train", 24, 0), ("validation", 8, 24), ("test", 8, 32)]:
        lines = [json.dumps(record) for record in assistant_records(count, offset)]
        (tmp_path / data_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n")

    result = run_example(example, tmp_path, **hub_settings(hub, tmp_path / "hf_home"))
    assert result.returncode == 0, result.stderr
    assert 0.0 <= float(result.stdout.strip().splitlines()[-1]) <= 1.0  # the printed test sentence accuracy
    assert (tmp_path / model_dir / "model.safetensors").is_file()
    card = (tmp_path / model_dir / "README.md").read_text()
    assert "split: test" in card and "Sentence accuracy" in card  # the eval results went into the card
    assert {"model.safetensors", "tokenizer.json", "README.md"} <= set(hub.files(repo_id))


def test_examples_import_the_top_level_package_only():
    """Python examples use the public API, `from multitask_bert import ...`, never a submodule."""
    for path in DOCS:
        for block in code_blocks("python", path.read_text()):
            submodule_imports = re.findall(r"^\s*(?:from|import) multitask_bert\.\S+", block, flags=re.MULTILINE)
            assert not submodule_imports, (path.relative_to(REPO_ROOT), submodule_imports)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {github_anchor(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if linked == WRITTEN_SEPARATELY and not linked.exists():
            continue
        if not linked.exists():
            broken.append(target)
        elif anchor and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO_ROOT)} links to missing files or headings: {broken}"


def test_architecture_doc_linked_from_readme_exists():
    assert "(docs/ARCHITECTURE.md)" in README
    if not WRITTEN_SEPARATELY.exists():
        pytest.skip("docs/ARCHITECTURE.md is written separately and is not there yet")


def test_ci_runs_the_readme_test_command():
    test_command = next(block.strip() for block in code_blocks("bash") if "pytest" in block)
    assert test_command in (REPO_ROOT / ".ci" / "run").read_text()


def packages_of_extras(extras: set[str]) -> set[str]:
    """Names of the packages that `multitask-bert[extras]` installs beyond the core, following nested extras."""
    names: set[str] = set()
    for requirement in requires("multitask-bert") or []:
        match = re.fullmatch(r"([\w.-]+)(?:\[([\w,]+)\])?[^;]*; extra == \"(\w+)\"", requirement)
        if match and match.group(3) in extras:
            name, nested = match.group(1), match.group(2)
            names |= packages_of_extras(set(nested.split(","))) if name == "multitask-bert" else {name}
    return names


def test_readme_test_command_installs_the_optional_packages_the_tests_use():
    """The extras of README's test command bring onnx, onnxruntime, gradio and selenium (tests import them)."""
    test_command = next(block.strip() for block in code_blocks("bash") if "pytest" in block)
    extras = set(re.search(r'"\.\[([\w,]+)\]"', test_command).group(1).split(","))
    installed = packages_of_extras(extras)
    assert {"onnx", "onnxruntime", "onnxscript", "gradio", "selenium", "pytest", "hypothesis"} <= installed, installed


def test_ci_runs_in_a_fresh_virtual_environment_and_fails_when_no_test_runs():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"python3? -m venv \"\$env_dir", script) and "mktemp -d" in script
    assert re.search(r"source \"\$env_dir/venv/bin/activate\"", script)
    result = subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci" / "run")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"$status" -eq 5' in script and "exit 1" in script
