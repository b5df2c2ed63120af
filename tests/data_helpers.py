"""Helpers shared by the data tests (`test_data_*.py`, `test_tokenization.py`): the fixture folders, reading rows back
as label names, the common layout checks and file writers."""

from __future__ import annotations

from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict

from multitask_bert.training.data import NO_LABEL, UNK

FIXTURES = Path(__file__).parent / "fixtures"
DATA_LOGGER = "multitask_bert.training.data"


def decoded(dataset: Dataset) -> list[dict]:
    """Rows with label names instead of ids (`None` for no intent)."""
    intents = dataset.features["intent"]
    tags = dataset.features["ner_tags"].feature
    return [
        {
            "tokens": row["tokens"],
            "intent": None if row["intent"] == NO_LABEL else intents.int2str(row["intent"]),
            "ner_tags": [tags.int2str(tag) for tag in row["ner_tags"]],
        }
        for row in dataset
    ]


def assert_layout(dataset_dict: DatasetDict) -> None:
    """The common contract: known splits, the four columns, identical features, O first and UNK last."""
    assert set(dataset_dict) <= {"train", "validation", "test"}
    features = [dataset.features for dataset in dataset_dict.values()]
    assert all(feature == features[0] for feature in features)
    assert list(features[0]) == ["text", "tokens", "intent", "ner_tags"]
    assert isinstance(features[0]["intent"], ClassLabel)
    assert isinstance(features[0]["ner_tags"].feature, ClassLabel)
    assert features[0]["intent"].names[-1] == UNK
    ner_names = features[0]["ner_tags"].feature.names
    assert ner_names[0] == "O" and ner_names[-1] == UNK


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_jointbert(root: Path, splits: dict[str, tuple[str, str | None, str | None]]) -> Path:
    for split, (seq_in, seq_out, label) in splits.items():
        write(root / split / "seq.in", seq_in)
        if seq_out is not None:
            write(root / split / "seq.out", seq_out)
        if label is not None:
            write(root / split / "label", label)
    return root


# Hand-written, written at test time: files named seq.in/seq.out are never tracked, so that benchmark data cannot
# slip into the repository unnoticed. Line 1 of train has an I- tag after O; ATIS-style `#` intents; a trailing space.
JOINTBERT_FIXTURE = {
    "train": (
        "wake me up at 7 am\nset a timer for ten minutes \nremind me to call john tomorrow\n"
        "flights from new york to denver and their fares\n",
        "O O O O I-TIME I-TIME\nO O O O B-DURATION I-DURATION\nO O O O B-PERSON B-DATE\n"
        "O O B-fromloc I-fromloc O B-toloc O O O\n",
        "set_alarm\nset_timer\nset_reminder\nflight#airfare\n",
    ),
    "dev": (
        "alarm at 6 pm\nset a timer for 5 minutes\n",
        "O O B-TIME I-TIME\nO O O O B-DURATION I-DURATION\n",
        "set_alarm\nset_timer\n",
    ),
    "test": (
        "cancel my alarm at 8 am\nbook a table at noon\n",
        "O O O O B-TIME I-TIME\nO O B-restaurant O B-TIME\n",
        "cancel_event\nset_alarm\n",
    ),
}
