"""Bad input gets a clear error or a documented result: texts from the wild through the pipeline, broken training data
through `multitask-bert train`, damaged model folders; and properties of the tag alignment and of the BIO grouping."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModel, pipeline

from conftest import INTENTS, tiny_model
from multitask_bert.training import cli
from multitask_bert.training.data import IGNORE_INDEX, UNK, tokenize_dataset

TAGS = ["O", "B-TIME", "I-TIME", "B-PERSON", "I-PERSON", UNK]
FAST_TRAINING = ["--max_steps", "2", "--use_cpu", "--disable_tqdm", "true", "--per_device_train_batch_size", "4"]

# --- the pipeline on texts from the wild --------------------------------------------------------------------------

WILD_TEXTS = {
    "empty": "",
    "whitespace": " \t\n\u3000\u00a0 ",
    "one 20,000-character word": "x" * 20_000,
    "20,000 characters of words": " ".join(["call", "Anna", "at", "5pm", "tomorrow"] * 800)[:20_000],
    "emoji": "wake me 🎉🎉 at 7 👨\u200d👩\u200d👧 with 👍🏽 ⏰",
    "CJK": "明天早上七点叫醒我 東京で会議 회의 취소",
    "right to left": "קבע פגישה עם דנה מחר ב-10 مرحبا بالعالم",
    "combining marks": "cafe\u0301 with Zoe\u0308 at noon \u0301\u0300 n\u0303",
    "zero-width characters": "call\u200b Anna\u200d at\ufeff 5pm\u200c \u2060",
    "control characters": "wake\x00 me\x07 at\x1b[31m 7\r\n\x7f\x85 \x0b",
    "bidi controls": "\u202emeet Anna\u202c \u2066at 5\u2069 \u200fok",
}
NOTHING_TO_TOKENIZE = ["", " \t\n ", "\u200b\u200d\ufeff", "\x00\x01\x07\x7f", "\u0301\u0300"]


def forced_tag_model(tag: str):
    """Every token gets `tag`: a zero NER head with a large bias on that tag."""
    model = tiny_model(
        tasks={"intent": {"level": "sentence", "labels": INTENTS}, "ner": {"level": "token", "labels": TAGS}}
    )
    with torch.no_grad():
        model.heads["ner"].weight.zero_()
        model.heads["ner"].bias.zero_()
        model.heads["ner"].bias[TAGS.index(tag)] = 10.0
    return model


@pytest.fixture(scope="module")
def pipes(tokenizer):
    """`B-TIME` everywhere (each word its own entity) and `I-TIME` everywhere (runs of words join)."""
    return {tag: pipeline("joint-intent-ner", model=forced_tag_model(tag), tokenizer=tokenizer) for tag in TAGS[1:3]}


def word_spans(tokenizer, text: str) -> list[tuple[int, int]]:
    """Character span of each word the tokenizer sees (first to last of its sub-tokens)."""
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans: dict[int, tuple[int, int]] = {}
    for word, (start, end) in zip(encoding.word_ids(), encoding["offset_mapping"], strict=True):
        known = spans.get(word, (start, end))
        spans[word] = (min(start, known[0]), max(end, known[1]))
    return [spans[word] for word in sorted(spans)]


def assert_exact_ordered_spans(text: str, entities: list[dict]) -> None:
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["word"], entity
        assert entity["start"] < entity["end"], entity
    for before, after in zip(entities, entities[1:], strict=False):
        assert before["end"] <= after["start"], (before, after)


@pytest.mark.parametrize("name", list(WILD_TEXTS))
def test_wild_texts_give_exact_entities(pipes, tokenizer, name):
    text = WILD_TEXTS[name]
    spans = word_spans(tokenizer, text)
    each_word = pipes["B-TIME"](text)
    assert each_word["text"] == text and each_word["intent"]["label"] in INTENTS
    assert_exact_ordered_spans(text, each_word["entities"])
    # every word the tokenizer sees is one entity, long texts included (windows lose no word)
    assert [(entity["start"], entity["end"]) for entity in each_word["entities"]] == spans
    assert all(entity["entity_group"] == "TIME" and 0 < entity["score"] <= 1 for entity in each_word["entities"])
    one_run = pipes["I-TIME"](text)["entities"]
    assert_exact_ordered_spans(text, one_run)
    assert [(entity["start"], entity["end"]) for entity in one_run] == ([(spans[0][0], spans[-1][1])] if spans else [])


@pytest.mark.parametrize("text", NOTHING_TO_TOKENIZE)
def test_texts_with_nothing_to_tokenize_behave_like_the_empty_text(pipes, tokenizer, text):
    """As the pipeline documents: no entities, the intent of the bare special tokens."""
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == []
    result = pipes["B-TIME"](text)
    assert result["entities"] == [] and result["text"] == text
    assert result["intent"] == pipes["B-TIME"]("")["intent"]


def test_a_batch_mixing_wild_texts(pipes, tokenizer):
    texts = list(WILD_TEXTS.values())
    batched = pipes["B-TIME"](texts, batch_size=4)
    assert [result["text"] for result in batched] == texts
    assert [len(result["entities"]) for result in batched] == [len(word_spans(tokenizer, text)) for text in texts]


@pytest.mark.parametrize(("inputs", "message"), [(None, "got a NoneType"), (["ok", "", None], "Input 2 is a NoneType")])
def test_none_is_a_type_error(pipes, inputs, message):
    with pytest.raises(TypeError, match=message):
        pipes["B-TIME"](inputs, batch_size=2)


@pytest.mark.parametrize("item", [{"text": "hi"}, ["hi"], 1.5, b"hi"])
def test_non_string_items_are_named_by_index(pipes, item):
    with pytest.raises(TypeError, match=f"Input 1 is a {type(item).__name__}, not a string"):
        pipes["B-TIME"](["fine", item, "also fine"])


def test_lone_surrogate_is_a_value_error_naming_its_position(pipes):
    text = json.loads('"wake me at 7 \\ud83d"')  # an emoji cut in half, as broken JSON clients send it
    with pytest.raises(ValueError, match=r"lone surrogate '\\ud83d' at character 13"):
        pipes["B-TIME"](text)


# --- properties: BIO grouping and sub-token alignment -----------------------------------------------------------------

WORD_POOL = ["wake", "me", "Zbigniewski", "5pm", "o'clock", "🎉", "東京", "café", "e\u0301", "Anna", "שלום", "x" * 150]


@pytest.fixture(scope="module")
def grouping_pipe(tokenizer):
    return pipeline("joint-intent-ner", model=forced_tag_model("O"), tokenizer=tokenizer)


@settings(max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_bio_grouping_gives_consistent_entities(grouping_pipe, tokenizer, data):
    """Any word tags, put on the first sub-tokens of a real window, group into entities that follow the documented
    rules: `B-X` opens an entity, `I-X` continues an `X` entity (else opens one), anything else is outside."""
    words = data.draw(st.lists(st.sampled_from(WORD_POOL), min_size=1, max_size=12))
    gaps = data.draw(st.lists(st.sampled_from([" ", "  ", "\t", " \u200b "]), min_size=len(words), max_size=len(words)))
    text = "".join(word + gap for word, gap in zip(words, gaps, strict=True)).strip()
    spans = word_spans(tokenizer, text)
    (window,) = grouping_pipe.preprocess(text)
    first_subtokens = window["word_start_mask"][0].nonzero().squeeze(1)
    assert len(first_subtokens) == len(spans)
    tags = data.draw(st.lists(st.sampled_from(TAGS), min_size=len(spans), max_size=len(spans)))
    output = grouping_pipe.forward(window)
    output["ner_tags"][0, first_subtokens] = torch.tensor([TAGS.index(tag) for tag in tags])
    entities = grouping_pipe.postprocess([output])["entities"]

    assert_exact_ordered_spans(text, entities)
    types = [tag[2:] if tag[:2] in ("B-", "I-") else None for tag in tags]
    opens = [
        kind is not None and (tag[0] == "B" or index == 0 or types[index - 1] != kind)
        for index, (tag, kind) in enumerate(zip(tags, types, strict=True))
    ]
    closes = [
        kind is not None and (index + 1 == len(tags) or not (tags[index + 1] == f"I-{kind}"))
        for index, (tag, kind) in enumerate(zip(tags, types, strict=True))
    ]
    assert [entity["start"] for entity in entities] == [
        span[0] for span, flag in zip(spans, opens, strict=True) if flag
    ]
    assert [entity["end"] for entity in entities] == [span[1] for span, flag in zip(spans, closes, strict=True) if flag]
    for (start, end), kind in zip(spans, types, strict=True):
        inside = [entity for entity in entities if entity["start"] <= start and end <= entity["end"]]
        assert [entity["entity_group"] for entity in inside] == ([kind] if kind else [])


ALIGNMENT_FEATURES = Features(
    {
        "text": Value("string"),
        "tokens": Sequence(Value("string")),
        "intent": ClassLabel(names=["greet", UNK]),
        "ner_tags": Sequence(ClassLabel(names=TAGS)),
    }
)
words_strategy = st.one_of(
    st.sampled_from(WORD_POOL), st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)
)


@settings(max_examples=30, deadline=None, database=None)
@given(
    examples=st.lists(
        st.lists(st.tuples(words_strategy, st.sampled_from(range(len(TAGS)))), min_size=1, max_size=10),
        min_size=1,
        max_size=4,
    ),
    label_all_subtokens=st.booleans(),
)
def test_word_tags_survive_tokenization(tokenizer, examples, label_all_subtokens):
    """Reading `ner_labels` back through `word_ids()` gives every word that has tokens its tag again; later sub-tokens
    and special tokens carry -100 (or, with `label_all_subtokens`, the word's tag with `B-` turned into `I-`)."""
    rows = {
        "text": [" ".join(word for word, _ in pairs) for pairs in examples],
        "tokens": [[word for word, _ in pairs] for pairs in examples],
        "intent": [0] * len(examples),
        "ner_tags": [[tag for _, tag in pairs] for pairs in examples],
    }
    dataset = DatasetDict({"train": Dataset.from_dict(rows, features=ALIGNMENT_FEATURES)})
    encoded = tokenize_dataset(dataset, tokenizer, label_all_subtokens=label_all_subtokens)["train"]
    for words, tags, labels in zip(rows["tokens"], rows["ner_tags"], encoded["ner_labels"], strict=True):
        word_ids = tokenizer(words, is_split_into_words=True).word_ids()
        assert len(labels) == len(word_ids)
        recovered = {}
        for position, (word, label) in enumerate(zip(word_ids, labels, strict=True)):
            if word is None:
                assert label == IGNORE_INDEX
            elif position == 0 or word_ids[position - 1] != word:
                assert word not in recovered, "a word's sub-tokens are contiguous"
                recovered[word] = label
            elif label_all_subtokens:
                assert TAGS[label] == TAGS[tags[word]].replace("B-", "I-")
            else:
                assert label == IGNORE_INDEX
        assert recovered == {word: tags[word] for word in word_ids if word is not None}


# --- broken training data through `multitask-bert train` ---------------------------------------------------------


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


BROKEN_DATA = {
    "wrong tag count": (
        {
            "train/seq.in": "wake me at 7\nset a timer\n",
            "train/seq.out": "O O O B-TIME\nO O\n",
            "train/label": "a\nb\n",
        },
        r"train/seq.out, line 2: 2 tags for 3 words in seq.in",
    ),
    "non-UTF-8 bytes": ({"train.conll": b"wake O\nme O\n\nr\xe9veil O\n"}, r"train.conll, line 4: not valid UTF-8"),
    "missing train split": ({"validation.jsonl": jsonl({"text": "hi", "intent": "greet"})}, r"no train split"),
    "invalid JSON": (
        {"train.jsonl": jsonl({"text": "hi", "intent": "greet"}) + "{oops\n"},
        r"train.jsonl, line 2: invalid",
    ),
    "no labels at all": ({"train.jsonl": jsonl({"text": "hi"}, {"text": "bye"})}, r"has labels in the train split"),
}


@pytest.mark.parametrize("case", list(BROKEN_DATA))
def test_train_command_names_the_file_and_line_of_broken_data(tmp_path, tiny_backbone_dir, capsys, case):
    files, message = BROKEN_DATA[case]
    data = write_files(tmp_path / "data", files)
    argv = ["train", "--data", str(data), "--backbone", str(tiny_backbone_dir), "--output_dir", str(tmp_path / "out")]
    assert cli.main(argv + FAST_TRAINING) == 2
    error = capsys.readouterr().err.strip()
    assert re.fullmatch(f"multitask-bert train: error: .*{message}.*", error), error
    if "line" in message:
        assert str(data) in error
    assert not (tmp_path / "out").exists(), "nothing is written before the data is known to be good"


def train_command(tmp_path: Path, backbone: Path, data: Path, capsys) -> Path:
    output_dir = tmp_path / "out"
    argv = ["train", "--data", str(data), "--backbone", str(backbone), "--output_dir", str(output_dir)]
    assert cli.main(argv + FAST_TRAINING) == 0
    capsys.readouterr()
    return output_dir


def test_intent_only_data_with_an_unseen_validation_intent(tmp_path, tiny_backbone_dir, caplog, capsys):
    """No entity annotation anywhere: an intent-only model. An intent that only validation has maps to UNK (with a
    warning naming file and split) and is scored as wrong. No test split: validation is all that is evaluated."""
    data = write_files(
        tmp_path / "data",
        {
            "train.jsonl": jsonl(*[{"text": f"wake me at {hour}", "intent": "alarm"} for hour in range(4)])
            + jsonl({"text": "hello there", "intent": "greet"}, {"text": "hi", "intent": "greet"}),
            "validation.jsonl": jsonl(
                {"text": "wake me at 9", "intent": "alarm"}, {"text": "bye", "intent": "farewell"}
            ),
        },
    )
    with caplog.at_level(logging.WARNING):
        output_dir = train_command(tmp_path, tiny_backbone_dir, data, capsys)
    assert re.search(
        r"data, validation split: 1 labels are not in the vocabulary and map to UNK: intent farewell", caplog.text
    )
    model = AutoModel.from_pretrained(output_dir, trust_remote_code=True)
    intent = model.config.tasks.pop("intent")
    assert model.config.tasks == {} and intent.pop("temperature") > 0  # calibrated on validation
    assert intent == {"level": "sentence", "labels": ["alarm", "greet", UNK]}
    results = json.loads((output_dir / "eval_results.json").read_text())
    assert list(results) == ["validation"] and results["validation"]["intent_accuracy"] <= 0.5
    assert "entity_f1" not in results["validation"]


def test_entity_only_data_with_only_a_train_split(tmp_path, tiny_backbone_dir, capsys):
    """No intent anywhere: an entity-only model, trained without evaluation; the pipeline gives entities, no intent."""
    records = [
        {"text": f"meet {name} at noon", "entities": [{"start": 5, "end": 5 + len(name), "label": "PERSON"}]}
        for name in ("Anna", "Bob", "Chen", "Dana")
    ]
    data = write_files(tmp_path / "data", {"train.jsonl": jsonl(*records)})
    output_dir = train_command(tmp_path, tiny_backbone_dir, data, capsys)
    model = AutoModel.from_pretrained(output_dir, trust_remote_code=True)
    assert list(model.config.tasks) == ["ner"]
    assert json.loads((output_dir / "eval_results.json").read_text()) == {}
    result = pipeline("joint-intent-ner", model=str(output_dir), trust_remote_code=True)("meet Anna at noon")
    assert set(result) == {"entities", "text"}


# --- damaged model folders ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory, tokenizer) -> Path:
    model_dir = tmp_path_factory.mktemp("saved") / "model"
    tiny_model().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def damaged_copy(saved_model_dir: Path, tmp_path: Path, damage) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(saved_model_dir, model_dir)
    damage(model_dir)
    return model_dir


def truncate_weights(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def scramble_weights_header(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\xff" * 32  # the JSON header follows the 8-byte length
    weights.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate_weights, scramble_weights_header])
def test_damaged_weights_are_named_by_from_pretrained_and_predict(saved_model_dir, tmp_path, capsys, damage):
    model_dir = damaged_copy(saved_model_dir, tmp_path, damage)
    with pytest.raises(
        OSError, match=f"Cannot read the weights of {re.escape(str(model_dir))}.*truncated or corrupted"
    ):
        AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    assert cli.main(["predict", str(model_dir), "wake me at 7"]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err


@pytest.mark.parametrize(("task", "change", "sizes"), [("intent", ["extra"], (4, 3)), ("ner", [], (4, 5))])
def test_label_list_that_does_not_fit_the_saved_head(saved_model_dir, tmp_path, task, change, sizes):
    def edit_labels(model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        labels = config["tasks"][task]["labels"]
        config["tasks"][task]["labels"] = labels + change if change else labels[:-1]
        (model_dir / "config.json").write_text(json.dumps(config))

    model_dir = damaged_copy(saved_model_dir, tmp_path, edit_labels)
    expected = f"task '{task}' has {sizes[0]} labels in the config but {sizes[1]} in the saved weights"
    with pytest.raises(ValueError, match=expected):
        AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    # asked for, the head starts afresh at the config's size; the rest is the saved model's
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True, ignore_mismatched_sizes=True)
    assert model.heads[task].out_features == sizes[0]
    torch.testing.assert_close(model.backbone.state_dict(), tiny_model().backbone.state_dict(), rtol=0, atol=0)


def test_missing_tokenizer_is_named_by_predict_and_evaluate(saved_model_dir, tmp_path, capsys):
    def remove_tokenizer(model_dir: Path) -> None:
        for path in model_dir.glob("tokenizer*"):
            path.unlink()

    model_dir = damaged_copy(saved_model_dir, tmp_path, remove_tokenizer)
    assert cli.main(["predict", str(model_dir), "wake me at 7"]) == 2
    assert f"{model_dir} has no tokenizer" in capsys.readouterr().err
    assert cli.main(["evaluate", str(model_dir)]) == 2
    assert f"{model_dir} has no tokenizer" in capsys.readouterr().err
