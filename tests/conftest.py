"""Shared fixtures and helpers: tiny random encoders and models built here (no network), the packaged tokenizer,
the pipeline helpers that several test files use, subprocess helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, BertConfig, BertModel, RobertaConfig, RobertaModel, RobertaTokenizer, pipeline

from data_helpers import FIXTURES, JOINTBERT_FIXTURE, write_jointbert
from multitask_bert import MultiTaskBertConfig, MultiTaskBertModel, default_backbone_path
from multitask_bert.training.data import default_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
INTENTS = ["set_alarm", "set_timer", "cancel_event"]
NER_TAGS = ["O", "B-TIME", "I-TIME", "B-PERSON", "I-PERSON"]


def tiny_encoder_config(**overrides) -> BertConfig:
    """A 2-layer, 32-dim BERT sharing the packaged backbone's vocabulary (so its tokenizer fits)."""
    settings = dict(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    settings.update(overrides)
    return BertConfig(**settings)


def tiny_model(seed: int = 0, **config_overrides) -> MultiTaskBertModel:
    torch.manual_seed(seed)
    settings = dict(
        encoder=tiny_encoder_config(),
        tasks={
            "intent": {"level": "sentence", "labels": INTENTS},
            "ner": {"level": "token", "labels": NER_TAGS},
        },
    )
    settings.update(config_overrides)
    return MultiTaskBertModel(MultiTaskBertConfig(**settings)).eval()


def tiny_training_settings(tmp_path: Path, **overrides) -> dict:
    """`MultiTaskTrainingArguments` settings for a few fast CPU steps of a tiny model: no saving, no reports, seed 0."""
    settings = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=12,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=3e-3,
        logging_steps=3,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return settings


# As the data loaders and JointBERT label files make them: a prefix-less `PAD`, `O`, BIO tags, `UNK` last.
TAGS = ["PAD", "O", "B-TIME", "I-TIME", "B-PERSON", "I-PERSON", "UNK"]
WORDS = ["alpha", "Zürich", "café", "🎉", "naïve", "東", "meeting", "tomorrow", "x", "Ωmega"]


def tagging_model(max_positions: int = 128, use_crf: bool = False, seed: int = 0):
    tasks = {"intent": {"level": "sentence", "labels": INTENTS}, "ner": {"level": "token", "labels": TAGS}}
    return tiny_model(
        seed=seed, encoder=tiny_encoder_config(max_position_embeddings=max_positions), tasks=tasks, use_crf=use_crf
    )


def mixed_tags_model(max_positions: int = 128):
    """Random model whose NER head is scaled up, so tokens get a confident mix of all tags."""
    model = tagging_model(max_positions)
    with torch.no_grad():
        model.heads["ner"].weight.mul_(100)
    return model


def make_pipeline(model, tokenizer, **kwargs):
    return pipeline("joint-intent-ner", model=model, tokenizer=tokenizer, **kwargs)


def long_text(num_words: int = 90) -> str:
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(len(WORDS), (num_words,), generator=generator).tolist()
    gaps = torch.randint(1, 4, (num_words,), generator=generator).tolist()
    return "".join(WORDS[pick] + " " * gap for pick, gap in zip(picks, gaps, strict=True)).rstrip()


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_backbone_path())


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory, tokenizer) -> Path:
    """
    A saved tiny random BERT with the packaged tokenizer, for fast `multitask-bert train --backbone DIR` runs. It has
    no dropout, so runs over different process counts can be compared closely (`--classifier_dropout` still applies).
    """
    path = tmp_path_factory.mktemp("tiny_backbone")
    torch.manual_seed(0)
    encoder = BertModel(
        tiny_encoder_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), add_pooling_layer=False
    )
    encoder.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# The texts the tiny byte-level BPE tokenizer learns its merges from (it reads any text: unknown words fall to bytes).
BPE_TRAINING_TEXTS = [
    "remind me to call Dr. Müller tomorrow at 9am",
    "wake me up at 7am, please",
    "don't cancel the budget meeting on friday",
    "schedule lunch with Anna at noon in the lobby",
]


@pytest.fixture(scope="session")
def byte_level_tokenizer() -> RobertaTokenizer:
    """A RoBERTa-style (byte-level BPE) fast tokenizer with a tiny vocabulary, trained here on a few sentences."""
    trainer = ByteLevelBPETokenizer()
    special_tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer.train_from_iterator(BPE_TRAINING_TEXTS, vocab_size=400, min_frequency=1, special_tokens=special_tokens)
    bpe = json.loads(trainer.to_str())["model"]
    return RobertaTokenizer(vocab=bpe["vocab"], merges=[tuple(merge) for merge in bpe["merges"]])


@pytest.fixture(scope="session")
def tiny_roberta_backbone_dir(tmp_path_factory, byte_level_tokenizer) -> Path:
    """A saved tiny random RoBERTa encoder with the byte-level BPE tokenizer, for `--backbone DIR` runs."""
    path = tmp_path_factory.mktemp("tiny_roberta_backbone")
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(byte_level_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=byte_level_tokenizer.pad_token_id,
    )
    RobertaModel(config, add_pooling_layer=False).save_pretrained(path)
    byte_level_tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def fixtures(tmp_path) -> Path:
    """The fixture folders, with the JointBERT one written beside the tracked CoNLL and JSONL ones."""
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    write_jointbert(tmp_path / "fixtures" / "jointbert", JOINTBERT_FIXTURE)
    return tmp_path / "fixtures"


def run_without_project(
    code: str, tmp_path: Path, env: dict | None = None, block_project: bool = True
) -> subprocess.CompletedProcess:
    """Run Python code in a fresh offline process with its own module cache, where `import multitask_bert` fails."""
    script = tmp_path / "without_project.py"
    blocker = "import sys\nsys.modules['multitask_bert'] = None  # importing this project now fails\n"
    script.write_text((blocker if block_project else "") + textwrap.dedent(code))
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
    return result


def embedded_data_slice(folder: Path, sizes: dict[str, int]) -> Path:
    """The first `sizes[split]` lines of each split of the embedded data, written to `folder`."""
    for split, size in sizes.items():
        lines = (default_data_dir() / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / f"{split}.jsonl").write_text("".join(lines[:size]), encoding="utf-8")
    return folder
