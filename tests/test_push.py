"""Publishing end to end: push with the real huggingface_hub client to a Hub test double, load back by repo id.

The server (tests/hub_server.py) is a test double of the Hub on 127.0.0.1, not the Hub. Clients read HF_ENDPOINT at
import time, so every client runs in a subprocess with the environment pointing at the double.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save_file

from conftest import run_without_project, tiny_model
from hub_server import HubTestServer
from multitask_bert.hub_card.card_validation import validate_model_card
from multitask_bert.training.cli import main as cli_main

REPO_ID = "test-user/tiny-multitask"
TEXTS = ["wake me at 7", "cancel lunch with Anna on friday"]
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")
LOAD_AND_COMPARE = """
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained({repo_id!r}, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained({repo_id!r}, trust_remote_code=True)
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
batch = tokenizer({texts!r}, padding=True, return_tensors="pt")
with torch.no_grad():
    output = model(**batch)
expected = load_file({expected!r})
torch.testing.assert_close(output.logits["intent"], expected["intent"], atol=1e-6, rtol=0)
torch.testing.assert_close(output.logits["ner"], expected["ner"], atol=1e-6, rtol=0)
torch.testing.assert_close(output.sentence_embedding, expected["embedding"], atol=1e-6, rtol=0)
print("model ok")
"""
PIPELINE_AND_COMPARE = """
from transformers import pipeline

from_hub = pipeline(model={repo_id!r}, trust_remote_code=True)({texts!r})
from_folder = pipeline(model={model_dir!r}, trust_remote_code=True)({texts!r})
assert from_hub == from_folder, (from_hub, from_folder)
print("pipeline ok")
"""


@pytest.fixture
def hub():
    with HubTestServer() as server:
        yield server


@pytest.fixture
def model_dir(tmp_path, tokenizer) -> Path:
    model = tiny_model(use_crf=True)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**batch)
    expected = {"intent": output.logits["intent"], "ner": output.logits["ner"].contiguous()}
    save_file({**expected, "embedding": output.sentence_embedding}, str(tmp_path / "expected.safetensors"))
    return folder


def hub_env(hub: HubTestServer, home: Path, token: str | None, **extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test double, with `token` as the only credential."""
    env = {name: value for name, value in os.environ.items() if name not in TOKEN_VARIABLES}
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(home),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",  # the double speaks LFS only (see hub_server.py)
        **extra,
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def push(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "multitask_bert.training.cli", "push", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def load_by_repo_id(hub: HubTestServer, repo_id: str, model_dir: Path, tmp_path: Path) -> str:
    """Load in a fresh process with an empty cache, where multitask_bert cannot be imported; returns its stdout."""
    code = LOAD_AND_COMPARE.format(repo_id=repo_id, texts=TEXTS, expected=str(tmp_path / "expected.safetensors"))
    if (model_dir / "pipeline_multitask_bert.py").is_file():
        code += PIPELINE_AND_COMPARE.format(repo_id=repo_id, texts=TEXTS, model_dir=str(model_dir))
    home = tmp_path / "fresh_hf_home"
    env = hub_env(hub, home, token=None, HF_MODULES_CACHE=str(tmp_path / "fresh_modules"))
    result = run_without_project(code, tmp_path, env=env)
    assert (home / "hub" / f"models--{repo_id.replace('/', '--')}").is_dir()  # it came from the double
    return result.stdout


def test_pushed_model_loads_by_repo_id_without_the_project(hub, model_dir, tmp_path):
    (model_dir / "training_args.bin").write_bytes(b"a pickle")
    (model_dir / "checkpoint-2").mkdir()
    (model_dir / "checkpoint-2" / "model.safetensors").write_bytes(b"an old checkpoint")
    (model_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)  # kept with `train --keep-checkpoints`
    (model_dir / "checkpoints" / "checkpoint-4" / "model.safetensors").write_bytes(b"a kept checkpoint")

    result = push(str(model_dir), REPO_ID, env=hub_env(hub, tmp_path / "hf_home", "hf_pushtoken"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{hub.endpoint}/{REPO_ID}" in result.stdout

    files = hub.files(REPO_ID)
    assert {
        "config.json",
        "model.safetensors",
        "modeling_multitask_bert.py",
        "configuration_multitask_bert.py",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    } <= set(files)
    assert "training_args.bin" not in files and not any(path.startswith("checkpoint") for path in files)
    assert files["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    head = hub.repos[REPO_ID].branches["main"]
    assert hub.repos[REPO_ID].commits[head]["model.safetensors"].lfs_oid is not None  # went through LFS
    assert "AutoModel" in json.loads(files["config.json"])["auto_map"]
    card = ModelCard(files["README.md"].decode())
    validate_model_card(card)
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in card.text

    stdout = load_by_repo_id(hub, REPO_ID, model_dir, tmp_path)
    assert "model ok" in stdout
    if (model_dir / "pipeline_multitask_bert.py").is_file():
        assert "pipeline ok" in stdout


def test_push_to_a_private_branch_of_my_namespace(hub, model_dir, tmp_path):
    env = hub_env(hub, tmp_path / "hf_home", "hf_pushtoken")
    args = (str(model_dir), "tiny-multitask", "--private", "--revision", "dev", "--commit-message", "first cut")
    result = push(*args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    repo = hub.repos[REPO_ID]  # the name alone lands in the token owner's namespace
    assert repo.private
    assert set(hub.files(REPO_ID, "main")) == {".gitattributes"}
    assert "model.safetensors" in hub.files(REPO_ID, "dev")
    assert repo.messages[repo.branches["dev"]] == "first cut"
    assert REPO_ID in hub.files(REPO_ID, "dev")["README.md"].decode()

    again = push(*args, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert repo.messages[repo.branches["dev"]] == "first cut"  # nothing changed, so no new commit


def test_token_stays_out_of_logs_folder_and_repo(hub, model_dir, tmp_path):
    token = "hf_" + secrets.token_hex(17)
    env = hub_env(hub, tmp_path / "hf_home", token, HF_HUB_VERBOSITY="debug", TRANSFORMERS_VERBOSITY="debug")
    result = push(str(model_dir), REPO_ID, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    assert token in hub.tokens_seen  # the upload was authenticated with it...
    assert "(authenticated: True)" in result.stderr  # debug logs of the authenticated requests are on
    assert token not in result.stdout + result.stderr  # ...yet no log line shows it
    for path in model_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    for path, content in hub.files(REPO_ID).items():
        assert token.encode() not in content, path


def test_plain_transformers_push_to_hub_works_too(hub, model_dir, tmp_path):
    repo_id = "test-user/plain-push"
    run_without_project(
        f"""
        from transformers import AutoModel, AutoTokenizer
        AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True).push_to_hub({repo_id!r})
        AutoTokenizer.from_pretrained({str(model_dir)!r}, trust_remote_code=True).push_to_hub({repo_id!r})
        """,
        tmp_path,
        env=hub_env(hub, tmp_path / "hf_home", "hf_pushtoken"),
    )
    assert "modeling_multitask_bert.py" in hub.files(repo_id)
    assert "model ok" in load_by_repo_id(hub, repo_id, model_dir, tmp_path)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("config.json", "has no config.json"),
        ("model.safetensors", "has no model.safetensors"),
        ("modeling_multitask_bert.py", "modeling_multitask_bert.py is not in"),
        ("tokenizer_config.json", "has no tokenizer"),
    ],
)
def test_push_refuses_a_folder_that_would_not_load(model_dir, capsys, missing, message):
    (model_dir / missing).unlink()
    assert cli_main(["push", str(model_dir), REPO_ID]) == 2
    assert message in capsys.readouterr().err


def test_push_without_a_token_says_how_to_log_in(hub, model_dir, tmp_path):
    result = push(str(model_dir), REPO_ID, env=hub_env(hub, tmp_path / "empty_hf_home", token=None), cwd=tmp_path)
    assert result.returncode == 2
    assert "hf auth login" in result.stderr and "HF_TOKEN" in result.stderr
    assert hub.repos == {}


FOUR_TASKS = Path(__file__).parent / "fixtures" / "four_tasks"
PIPELINE_BY_REPO_ID = """
import json
from transformers import pipeline

print(json.dumps(pipeline(model={repo_id!r}, trust_remote_code=True)({texts!r})))
"""


def test_four_task_model_trains_pushes_and_predicts_every_task_by_repo_id(hub, tiny_backbone_dir, tmp_path):
    """JSONL with two sentence tasks (`intent`, `mood`) and two token tasks (`entities` = `ner`, `acts`), some records
    without `mood` or `acts`: train -> push to the test Hub -> pipeline by repo id where the project is absent."""
    model_dir = tmp_path / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(FOUR_TASKS), "--output-dir", str(model_dir)]
    argv += ["--max-steps", "4", "--per-device-train-batch-size", "3", "--save-strategy", "no"]
    assert cli_main([*argv, "--disable-tqdm", "true"]) == 0

    config = json.loads((model_dir / "config.json").read_text())
    assert {task: spec["level"] for task, spec in config["tasks"].items()} == {
        "intent": "sentence",
        "mood": "sentence",
        "ner": "token",
        "acts": "token",
    }
    assert config["tasks"]["acts"]["labels"] == ["O", "B-POLITE", "I-POLITE", "B-REQUEST", "I-REQUEST", "UNK"]
    results = json.loads((model_dir / "eval_results.json").read_text())
    for metrics in results.values():
        for key in ("intent_accuracy", "mood_accuracy", "entity_f1", "acts_f1", "sentence_accuracy"):
            assert 0.0 <= metrics[key] <= 1.0, key
    card = ModelCard((model_dir / "README.md").read_text())
    validate_model_card(card)
    assert "`mood`" in card.text and "`acts`" in card.text and "REQUEST" in card.text
    assert f"| test | `mood` | {results['test']['mood_accuracy']:.4f} |" in card.text  # scores per task

    result = push(str(model_dir), REPO_ID, env=hub_env(hub, tmp_path / "hf_home", "hf_pushtoken"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    env = hub_env(hub, tmp_path / "fresh_hf_home", token=None, HF_MODULES_CACHE=str(tmp_path / "fresh_modules"))
    texts = ["wake Anna at noon on friday", "thanks"]
    code = PIPELINE_BY_REPO_ID.format(repo_id=REPO_ID, texts=texts)
    predictions = json.loads(run_without_project(code, tmp_path, env=env).stdout)
    for text, prediction in zip(texts, predictions, strict=True):
        assert set(prediction) == {"intent", "mood", "entities", "acts", "text"}
        assert prediction["intent"]["label"] in config["tasks"]["intent"]["labels"]
        assert prediction["mood"]["label"] in config["tasks"]["mood"]["labels"]
        for entity in prediction["entities"] + prediction["acts"]:
            assert text[entity["start"] : entity["end"]] == entity["word"]
    assert {entity["entity_group"] for entity in predictions[0]["acts"]} <= {"POLITE", "REQUEST"}
