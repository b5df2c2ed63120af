"""Embedding preservation: the teacher vectors, the loss term and its weight, resuming, the STS Benchmark score and
where it is reported. Tiny random models on CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from scipy.stats import spearmanr
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer

from conftest import INTENTS, NER_TAGS, tiny_encoder_config, tiny_model, tiny_training_settings
from multitask_bert import MultiTaskTrainer, MultiTaskTrainingArguments
from multitask_bert.training import cli
from multitask_bert.training.data import MultiTaskDataCollator, default_data_dir
from multitask_bert.training.embedding_preservation import TEACHER_EMBEDDING, add_teacher_embeddings
from multitask_bert.training.sts_benchmark import read_sts_benchmark, sts_benchmark_spearman

UTTERANCES = [
    ("wake me at 7", "set_alarm"),
    ("set an alarm for six thirty", "set_alarm"),
    ("timer for ten minutes", "set_timer"),
    ("start a timer of 5 minutes", "set_timer"),
    ("cancel lunch with anna", "cancel_event"),
    ("call off the meeting with john smith tomorrow", "cancel_event"),
    ("please wake me up early", "set_alarm"),
    ("drop my dentist appointment", "cancel_event"),
]
STS_PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A man is riding a horse.", 0.2),
    ("Kids are playing in the park.", "Children play outside in a park.", 4.2),
    ("The stock market fell today.", "A cat sleeps on the sofa.", 0.0),
    ("A dog runs on the beach.", "A dog is running along the shore.", 4.5),
    ("He is cooking dinner.", "She is reading a book.", 0.6),
    ("Two people are talking.", "Two men are having a conversation.", 3.8),
    ("The plane is taking off.", "An airplane departs.", 4.0),
]


def sentence_data(tokenizer, with_tags: bool = True) -> Dataset:
    """The utterances tokenized, an intent each and (optionally) an `O` tag on every word's first sub-token."""
    rows = []
    for text, intent in UTTERANCES:
        encoding = tokenizer(text.split(), is_split_into_words=True)
        row = {**encoding, "intent_labels": INTENTS.index(intent)}
        if with_tags:
            word_ids = encoding.word_ids()
            row["ner_labels"] = [
                -100 if word is None or (position and word == word_ids[position - 1]) else NER_TAGS.index("O")
                for position, word in enumerate(word_ids)
            ]
        rows.append(row)
    return Dataset.from_list(rows)


def no_dropout_model(seed: int = 0, **config_overrides):
    encoder = tiny_encoder_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return tiny_model(seed=seed, encoder=encoder, classifier_dropout=0.0, **config_overrides).train()


def make_trainer(model, data, tokenizer, tmp_path: Path, **overrides) -> MultiTaskTrainer:
    settings = tiny_training_settings(tmp_path, max_steps=10, per_device_eval_batch_size=3, logging_steps=5)
    settings.update(overrides)
    return MultiTaskTrainer(
        model=model,
        args=MultiTaskTrainingArguments(**settings),
        train_dataset=data,
        data_collator=MultiTaskDataCollator(tokenizer),
    )


@torch.no_grad()
def embeddings(model, data: Dataset, tokenizer) -> torch.Tensor:
    """The model's `sentence_embedding` of every row, in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    batch = MultiTaskDataCollator(tokenizer)([{"input_ids": ids} for ids in data["input_ids"]])
    vectors = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).sentence_embedding
    model.train(was_training)
    return vectors


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item()


def test_teacher_vectors_are_the_starting_embeddings_computed_once_for_all_epochs(tokenizer, tmp_path):
    model = no_dropout_model()
    data = sentence_data(tokenizer)
    start = embeddings(model, data, tokenizer)
    eval_mode_forwards = []
    model.register_forward_pre_hook(lambda module, args: eval_mode_forwards.append(not module.training))
    trainer = make_trainer(model, data, tokenizer, tmp_path, max_steps=-1, num_train_epochs=3)
    trainer.train()

    teacher = torch.tensor(trainer.train_dataset[TEACHER_EMBEDDING])
    torch.testing.assert_close(teacher, start, rtol=1e-5, atol=1e-6)  # batched and padded differently
    teacher_batches = math.ceil(len(data) / trainer.args.per_device_eval_batch_size)
    assert sum(eval_mode_forwards) == teacher_batches  # one pass before training, none per epoch
    assert len(eval_mode_forwards) == teacher_batches + 3 * math.ceil(len(data) / 4)
    assert mean_cosine(embeddings(model, data, tokenizer), start) < 0.9999  # the model moved; the teacher did not

    eval_mode_forwards.clear()
    trainer.train()  # a second run on the same trainer keeps the first run's teacher
    assert not any(eval_mode_forwards)
    assert torch.equal(torch.tensor(trainer.train_dataset[TEACHER_EMBEDDING]), teacher)


def test_a_trained_model_continued_is_its_own_teacher(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    first = make_trainer(no_dropout_model(), data, tokenizer, tmp_path / "first", embedding_preservation_weight=0)
    first.train()
    trained = first.model
    continued = make_trainer(trained, data, tokenizer, tmp_path / "continued")
    continued_start = embeddings(trained, data, tokenizer)
    continued.train()
    teacher = torch.tensor(continued.train_dataset[TEACHER_EMBEDDING])
    torch.testing.assert_close(teacher, continued_start, rtol=1e-5, atol=1e-6)
    assert mean_cosine(teacher, embeddings(no_dropout_model(), data, tokenizer)) < 0.999


def test_the_term_reaches_the_encoder_and_only_the_encoder(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    collate = MultiTaskDataCollator(tokenizer)
    teacher = torch.nn.functional.normalize(torch.randn(len(data), 32, generator=torch.Generator().manual_seed(1)))
    batch = collate([{**row, TEACHER_EMBEDDING: vector.tolist()} for row, vector in zip(data, teacher, strict=True)])

    gradients, losses = {}, {}
    for weight in (0.0, 2.0):
        model = no_dropout_model()
        trainer = make_trainer(model, data, tokenizer, tmp_path / str(weight), embedding_preservation_weight=weight)
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        losses[weight] = loss.item()
        gradients[weight] = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
        embedding = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).sentence_embedding

    term = (1 - torch.nn.functional.cosine_similarity(embedding, batch[TEACHER_EMBEDDING])).mean().item()
    assert losses[2.0] == pytest.approx(losses[0.0] + 2.0 * term, rel=1e-5)
    for name, without in gradients[0.0].items():
        # The attention key's bias has no effect on the outputs (softmax is shift-invariant), so no gradient.
        if name.startswith("backbone.") and not name.endswith("key.bias"):
            assert not torch.allclose(gradients[2.0][name], without), f"{name}: the term gave no gradient"
        elif name.startswith("heads."):
            assert torch.equal(gradients[2.0][name], without), f"{name}: the term must not reach the heads"


def test_weight_zero_computes_no_teacher_and_trains_exactly_as_without_the_term(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    random_teacher = torch.randn(len(data), 32, generator=torch.Generator().manual_seed(2)).tolist()
    runs = {
        "weight 0": (0.0, data),
        "weight 0, teacher column present": (0.0, data.add_column(TEACHER_EMBEDDING, random_teacher)),
        "weight 1": (1.0, data),
    }
    weights = {}
    for name, (weight, dataset) in runs.items():
        trainer = make_trainer(
            no_dropout_model(), dataset, tokenizer, tmp_path / name, embedding_preservation_weight=weight
        )
        trainer.train()
        if name == "weight 0":
            assert TEACHER_EMBEDDING not in trainer.train_dataset.column_names
            assert not any("loss_embedding_preservation" in entry for entry in trainer.state.log_history)
        weights[name] = trainer.model.state_dict()
    for key, value in weights["weight 0"].items():
        assert torch.equal(value, weights["weight 0, teacher column present"][key]), key
    assert any(not torch.equal(value, weights["weight 1"][key]) for key, value in weights["weight 0"].items())


def test_weight_zero_trains_bit_for_bit_as_a_plain_trainer_on_the_joint_loss(tokenizer, tmp_path):
    """Weight 0 is training as before the term existed: a plain `transformers.Trainer` on the model's own loss."""
    data = sentence_data(tokenizer)
    ours = make_trainer(no_dropout_model(), data, tokenizer, tmp_path / "ours", embedding_preservation_weight=0)
    ours.train()
    plain_args = MultiTaskTrainingArguments(**{**ours.args.to_dict(), "output_dir": str(tmp_path / "plain")})
    plain = Trainer(
        model=no_dropout_model(),
        args=plain_args,
        train_dataset=data,
        data_collator=MultiTaskDataCollator(tokenizer),
    )
    plain.label_names = ["intent_labels", "ner_labels"]
    plain.model_accepts_loss_kwargs = False  # the model's `**<task>_labels` are targets, not loss kwargs
    plain.train()
    expected = plain.model.state_dict()
    for name, value in ours.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_the_teacher_pass_sees_the_columns_the_collator_sees_in_training(tokenizer, tmp_path):
    data = sentence_data(tokenizer, with_tags=False)
    data = data.add_column("length", [len(ids) for ids in data["input_ids"]])  # not a model input
    trainer = make_trainer(no_dropout_model(), data, tokenizer, tmp_path)
    trainer.data_collator = DataCollatorWithPadding(tokenizer)  # passes every column it is given to the model
    trainer.train()
    assert TEACHER_EMBEDDING in trainer.train_dataset.column_names and "length" in trainer.train_dataset.column_names


def test_a_new_model_from_model_init_is_its_own_teacher(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    seeds = iter(range(10))
    trainer = MultiTaskTrainer(
        model_init=lambda: no_dropout_model(seed=next(seeds)),  # seed 0 in __init__, 1 in train()
        args=make_trainer(no_dropout_model(), data, tokenizer, tmp_path).args,
        train_dataset=data,
        data_collator=MultiTaskDataCollator(tokenizer),
    )
    trainer.train()
    teacher = torch.tensor(trainer.train_dataset[TEACHER_EMBEDDING])
    torch.testing.assert_close(teacher, embeddings(no_dropout_model(seed=1), data, tokenizer), rtol=1e-5, atol=1e-6)


def preservation_losses(trainer: MultiTaskTrainer) -> list[float]:
    return [entry["loss_embedding_preservation"] for entry in trainer.state.log_history if "loss" in entry]


def test_a_dataset_that_cannot_take_a_column_gets_the_same_teacher_per_batch(tokenizer, tmp_path):
    """A train dataset that is not a `datasets.Dataset` (here a list, in the same shuffled order) is taught per
    batch by a frozen copy of the starting model: the same term, step for step, as the precomputed column."""
    data = sentence_data(tokenizer)
    column = make_trainer(no_dropout_model(), data, tokenizer, tmp_path / "a")
    column.train()
    per_batch = make_trainer(no_dropout_model(), [data[index] for index in range(len(data))], tokenizer, tmp_path / "b")
    per_batch.train()
    assert isinstance(per_batch.train_dataset, list)  # no column was added
    expected = preservation_losses(column)
    assert len(expected) == 2 and expected[-1] > 0
    assert preservation_losses(per_batch) == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_streamed_data_trains_with_the_term(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    model = no_dropout_model()
    start = model.heads["intent"].weight.detach().clone()
    streaming = make_trainer(model, data.to_iterable_dataset(), tokenizer, tmp_path)
    streaming.train()
    assert all(loss > 0 for loss in preservation_losses(streaming)) and len(preservation_losses(streaming)) == 2
    assert not torch.equal(model.heads["intent"].weight, start)


def test_a_batch_without_its_teacher_vectors_is_refused_by_name(tokenizer, tmp_path):
    data = sentence_data(tokenizer)

    def dropping_collator(rows: list[dict]) -> dict[str, torch.Tensor]:
        return MultiTaskDataCollator(tokenizer)(
            [{k: v for k, v in row.items() if k != TEACHER_EMBEDDING} for row in rows]
        )

    dropped = make_trainer(no_dropout_model(), data, tokenizer, tmp_path / "b")
    dropped.data_collator = dropping_collator
    with pytest.raises(ValueError, match="the batch has no `teacher_embedding`"):
        dropped.train()


@pytest.mark.parametrize(
    "model_settings, trainer_settings, with_tags",
    [
        ({"pooling": "mean"}, {}, True),
        ({"pooling": "cls"}, {}, True),
        ({"pooling": "max"}, {}, True),
        ({"pooling": "mean", "sentence_head_pooling": "attention"}, {}, True),
        ({"pooling": "mean", "use_crf": True}, {"freeze_layers": 1}, True),
        ({"pooling": "mean"}, {}, False),  # intent labels only, as with `--tasks intent`
    ],
    ids=["mean", "cls", "max", "own-head-attention-pooling", "crf-frozen-layer", "intent-only"],
)
def test_preservation_keeps_embeddings_closer_to_the_start(
    tokenizer, tmp_path, model_settings, trainer_settings, with_tags
):
    data = sentence_data(tokenizer, with_tags=with_tags)
    start = embeddings(no_dropout_model(**model_settings), data, tokenizer)
    closeness = {}
    for weight in (0.0, 1.0):
        model = no_dropout_model(**model_settings)
        settings = {"max_steps": 30, "embedding_preservation_weight": weight, **trainer_settings}
        trainer = make_trainer(model, data, tokenizer, tmp_path / str(weight), **settings)
        trainer.train()
        closeness[weight] = mean_cosine(embeddings(model, data, tokenizer), start)
        if weight:
            logged = [entry["loss_embedding_preservation"] for entry in trainer.state.log_history if "loss" in entry]
            assert len(logged) == 6 and all(value >= 0 for value in logged)
    assert closeness[1.0] > closeness[0.0] + 0.01, closeness


def test_resuming_with_preservation_gives_the_weights_of_an_uninterrupted_run(tokenizer, tmp_path):
    data = sentence_data(tokenizer)
    settings = dict(max_steps=6, save_strategy="steps", save_steps=3, embedding_preservation_weight=1.0)
    model = tiny_model(use_crf=True).train()  # with dropout, so the resumed RNG state matters too
    uninterrupted = make_trainer(model, data, tokenizer, tmp_path / "a", **settings)
    uninterrupted.train()
    resumed = make_trainer(tiny_model(use_crf=True).train(), data, tokenizer, tmp_path / "b", **settings)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "out" / "checkpoint-3"))
    expected = uninterrupted.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_the_teacher_pass_leaves_the_random_state_and_refuses_a_second_column(tokenizer):
    data = sentence_data(tokenizer)
    collate = MultiTaskDataCollator(tokenizer)
    model = no_dropout_model()
    state = torch.get_rng_state()
    with_teacher = add_teacher_embeddings(model, data, collate)
    assert torch.equal(torch.get_rng_state(), state)  # data order and dropout of the training that follows unchanged
    assert model.training
    with pytest.raises(ValueError, match="already has a 'teacher_embedding' column"):
        add_teacher_embeddings(no_dropout_model(), with_teacher, collate)


def write_sts(path: Path, pairs=STS_PAIRS) -> Path:
    lines = ["genre\tsource\tscore\tsentence1\tsentence2"]
    lines += [f"main-captions\ttest\t{score:.3f}\t{first}\t{second}" for first, second, score in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        ("genre\tscore\n", r"line 1: expected the header"),
        ("genre\tsource\tscore\tsentence1\tsentence2\nx\ty\t2.5\tone sentence\n", r"line 2: expected 5"),
        ("genre\tsource\tscore\tsentence1\tsentence2\nx\ty\thigh\ta\tb\n", r"line 2: the score 'high'"),
        ("genre\tsource\tscore\tsentence1\tsentence2\n", r"no sentence pairs"),
    ],
)
def test_bad_sts_files_are_named_with_their_line(tmp_path, content, message):
    (tmp_path / "test.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as raised:
        read_sts_benchmark(tmp_path)
    assert str(tmp_path / "test.tsv") in str(raised.value)
    with pytest.raises(FileNotFoundError, match="no STS Benchmark file"):
        read_sts_benchmark(tmp_path / "missing")


def test_sts_score_is_the_spearman_of_the_models_own_embedding_cosines(tokenizer, tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    sts_file = write_sts(tmp_path / "sts.tsv")
    pairs = read_sts_benchmark(sts_file)
    with torch.no_grad():
        first = model(**tokenizer(pairs.sentences1, padding=True, return_tensors="pt")).sentence_embedding
        second = model(**tokenizer(pairs.sentences2, padding=True, return_tensors="pt")).sentence_embedding
    cosines = torch.nn.functional.cosine_similarity(first, second).tolist()
    expected = spearmanr(cosines, pairs.scores).statistic
    assert sts_benchmark_spearman(tmp_path / "model", sts_file) == pytest.approx(expected, abs=1e-6)


def saved_training_arguments(path: Path) -> MultiTaskTrainingArguments:
    """The Trainer's pickled `training_args.bin`, loaded with `weights_only=True` and only the classes it holds."""
    from accelerate.state import PartialState
    from accelerate.utils.dataclasses import DistributedType
    from transformers.trainer_pt_utils import AcceleratorConfig
    from transformers.trainer_utils import HubStrategy, IntervalStrategy, SaveStrategy, SchedulerType
    from transformers.training_args import OptimizerNames

    classes = [MultiTaskTrainingArguments, PartialState, DistributedType, AcceleratorConfig, HubStrategy]
    classes += [IntervalStrategy, SaveStrategy, SchedulerType, OptimizerNames]
    with torch.serialization.safe_globals(classes):
        return torch.load(path, weights_only=True)


def test_train_scores_the_embedding_before_and_after_and_the_card_reports_it(tmp_path, tiny_backbone_dir):
    data = tmp_path / "data"
    data.mkdir()
    for split, size in {"train": 32, "validation": 16, "test": 16}.items():
        lines = (default_data_dir() / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (data / f"{split}.jsonl").write_text("".join(lines[:size]), encoding="utf-8")
    sts_file = write_sts(tmp_path / "sts.tsv")
    output_dir = tmp_path / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(data), "--output_dir", str(output_dir)]
    argv += [
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "8",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
    ]
    argv += ["--embedding_preservation_weight", "0.5", "--sts_benchmark", str(sts_file)]
    assert cli.main(argv) == 0

    assert saved_training_arguments(output_dir / "training_args.bin").embedding_preservation_weight == 0.5
    inputs = json.loads((output_dir / "model_card_inputs.json").read_text())
    similarity = inputs["embedding_similarity"]
    assert similarity["spearman_cosine"] == pytest.approx(sts_benchmark_spearman(output_dir, sts_file), abs=1e-6)
    backbone = tmp_path / "backbone_as_model"
    from multitask_bert import MultiTaskBertModel

    start = MultiTaskBertModel.from_backbone(str(tiny_backbone_dir), intent_labels=["a"], ner_labels=["O"])
    start.save_pretrained(backbone)
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(backbone)
    assert similarity["base_spearman_cosine"] == pytest.approx(sts_benchmark_spearman(backbone, sts_file), abs=1e-6)

    card = (output_dir / "README.md").read_text()
    assert "embedding-preservation term (weight 0.5)" in card
    assert "- Embedding preservation: weight 0.5 on 1 - cosine to the starting model's embedding" in card
    assert f"| this model | {similarity['spearman_cosine']:.4f} |" in card
    assert "type: spearman_cosine" in card and f"value: {similarity['spearman_cosine']}" in card

    # `card --sts-benchmark` scores the folder again; the starting model's score stays only for the same file name.
    assert cli.main(["card", str(output_dir), "--sts-benchmark", str(sts_file)]) == 0
    again = json.loads((output_dir / "model_card_inputs.json").read_text())["embedding_similarity"]
    assert again == pytest.approx(similarity) and again["split"] == "sts"
    other_file = write_sts(tmp_path / "dev.tsv", STS_PAIRS[:6])
    assert cli.main(["card", str(output_dir), "--sts-benchmark", str(other_file)]) == 0
    other = json.loads((output_dir / "model_card_inputs.json").read_text())["embedding_similarity"]
    assert other["split"] == "dev" and other["base_spearman_cosine"] is None
    assert other["spearman_cosine"] == pytest.approx(sts_benchmark_spearman(output_dir, other_file), abs=1e-6)
    assert "STS Benchmark dev, Spearman" in (output_dir / "README.md").read_text()
