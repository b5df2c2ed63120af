"""MultiTaskTrainer and its arguments: joint training, per-task logs, LLRD groups, freezing, uncertainty weights,
resuming, and evaluate()/predict() through compute_metrics. Tiny random models on CPU."""

from __future__ import annotations

import re

import pytest
import torch
from datasets import Dataset
from safetensors import safe_open
from seqeval.metrics import f1_score
from transformers import DistilBertConfig, HfArgumentParser, MPNetConfig

from conftest import INTENTS, NER_TAGS, tiny_encoder_config, tiny_model, tiny_training_settings
from multitask_bert import (
    MultiTaskBertConfig,
    MultiTaskBertModel,
    MultiTaskTrainer,
    MultiTaskTrainingArguments,
    build_compute_metrics,
    set_loss_weighting,
)
from multitask_bert.training.cli.arguments import ModelArguments

EXAMPLES = [
    ("wake me at 7".split(), "set_alarm", ["O", "O", "O", "B-TIME"]),
    ("set an alarm for six thirty".split(), "set_alarm", ["O", "O", "O", "O", "B-TIME", "I-TIME"]),
    ("timer for ten minutes".split(), "set_timer", ["O", "O", "B-TIME", "I-TIME"]),
    ("start a timer of 5 minutes".split(), "set_timer", ["O", "O", "O", "O", "B-TIME", "I-TIME"]),
    ("cancel lunch with anna".split(), "cancel_event", ["O", "O", "O", "B-PERSON"]),
    ("call off the meeting with john smith".split(), "cancel_event", ["O", "O", "O", "O", "O", "B-PERSON", "I-PERSON"]),
]


def tokenize(tokenizer, examples=EXAMPLES, repeat: int = 2) -> Dataset:
    """Rows as the data contract has them: ids, intent id, tag id on each word's first sub-token, -100 elsewhere."""
    rows = []
    for words, intent, tags in examples * repeat:
        encoding = tokenizer(words, is_split_into_words=True)
        word_ids = encoding.word_ids()
        ner_labels = [
            -100 if word is None or word == word_ids[position - 1] else NER_TAGS.index(tags[word])
            for position, word in enumerate(word_ids)
        ]
        rows.append({**encoding, "intent_labels": INTENTS.index(intent), "ner_labels": ner_labels})
    return Dataset.from_list(rows)


def make_collator(tokenizer):
    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        inputs = [{key: value for key, value in row.items() if key != "ner_labels"} for row in features]
        batch = tokenizer.pad(inputs, return_tensors="pt")
        if "ner_labels" in features[0]:
            width = batch["input_ids"].shape[1]
            batch["ner_labels"] = torch.tensor(
                [row["ner_labels"] + [-100] * (width - len(row["ner_labels"])) for row in features]
            )
        return batch

    return collate


def make_trainer(tokenizer, tmp_path, model=None, dataset=None, **overrides) -> MultiTaskTrainer:
    settings = tiny_training_settings(tmp_path, **overrides)
    model = model if model is not None else tiny_model().train()
    dataset = dataset if dataset is not None else tokenize(tokenizer)
    return MultiTaskTrainer(
        model=model,
        args=MultiTaskTrainingArguments(**settings),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=make_collator(tokenizer),
        compute_metrics=build_compute_metrics(model.config),
    )


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def test_training_lowers_the_joint_loss(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, model=tiny_model(use_crf=True).train())
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.7 * before


def test_per_task_losses_are_logged_as_interval_means(tokenizer, tmp_path):
    model = set_loss_weighting(tiny_model().train(), task_weights={"intent": 2.0, "ner": 0.5})
    trainer = make_trainer(tokenizer, tmp_path, model=model, logging_steps=2, max_steps=6)
    assert trainer.model.config.task_weights == {"intent": 2.0, "ner": 0.5}
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logs] == [2, 4, 6]
    for entry in logs:
        # Every batch labels both tasks, so the logged joint loss is the weighted sum of the per-task means, plus the
        # embedding-preservation term at its default weight 1.
        expected = 2.0 * entry["loss_intent"] + 0.5 * entry["loss_ner"] + entry["loss_embedding_preservation"]
        assert entry["loss"] == pytest.approx(expected, rel=1e-5)
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] == pytest.approx(2.0 * metrics["eval_loss_intent"] + 0.5 * metrics["eval_loss_ner"])


@pytest.mark.skipif(torch.accelerator.is_available(), reason="with an accelerator, bf16 autocasts there")
@pytest.mark.parametrize(
    "model_settings",
    [{}, {"sentence_head_pooling": "attention", "sentence_aware_token_heads": True, "subword_pooling": "mean"}],
)
def test_bf16_trains_under_cpu_autocast_without_asking_for_use_cpu(tokenizer, tmp_path, model_settings):
    model = tiny_model(**model_settings).train()
    # Without the teacher pass (it runs before training, in fp32), every forward pass is a training step.
    settings = dict(bf16=True, max_steps=2, embedding_preservation_weight=0.0)
    trainer = make_trainer(tokenizer, tmp_path, model=model, **settings)
    assert trainer.args.use_cpu and trainer.args.device.type == "cpu"
    head_output_dtypes = []
    trainer.model.heads["intent"].register_forward_hook(
        lambda module, inputs, output: head_output_dtypes.append(output.dtype)
    )
    trainer.train()
    assert head_output_dtypes and set(head_output_dtypes) == {torch.bfloat16}
    assert {parameter.dtype for parameter in trainer.model.parameters()} == {torch.float32}


def layer_index(name: str, layer_prefix: str) -> int | None:
    match = re.search(rf"^backbone\.{re.escape(layer_prefix)}\.(\d+)\.", name)
    return int(match.group(1)) if match else None


ENCODERS = {
    "bert": (lambda: tiny_encoder_config(num_hidden_layers=3), "encoder.layer"),
    "distilbert": (
        lambda: DistilBertConfig(vocab_size=30522, dim=32, n_layers=3, n_heads=2, hidden_dim=64),
        "transformer.layer",
    ),
    "mpnet": (
        lambda: MPNetConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64
        ),
        "encoder.layer",
    ),
}


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_layerwise_learning_rates_follow_the_formula(tokenizer, tmp_path, encoder):
    build_config, layer_prefix = ENCODERS[encoder]
    model = tiny_model(encoder=build_config(), use_crf=True, uncertainty_weighting=True)
    lr, decay, head_lr, num_layers = 1e-3, 0.5, 1e-2, 3
    trainer = make_trainer(
        tokenizer, tmp_path, model=model, learning_rate=lr, layerwise_lr_decay=decay, head_learning_rate=head_lr
    )
    trainer.args.weight_decay = 0.01
    optimizer = trainer.create_optimizer()
    group_of = {id(parameter): group for group in optimizer.param_groups for parameter in group["params"]}
    assert len(group_of) == sum(len(group["params"]) for group in optimizer.param_groups)  # each parameter once
    for name, parameter in model.named_parameters():
        group = group_of[id(parameter)]
        index = layer_index(name, layer_prefix)
        if index is not None:
            expected = lr * decay ** (num_layers - 1 - index)
        elif "embeddings" in name:
            expected = lr * decay**num_layers
        elif name.startswith("backbone."):
            expected = lr  # shared by all layers (e.g. MPNet's relative attention bias)
        else:
            expected = head_lr  # heads, CRF, uncertainty weights
        assert group["lr"] == pytest.approx(expected), name
        no_decay = "bias" in name or "LayerNorm" in name or "layer_norm" in name or name == "log_task_variances"
        assert group["weight_decay"] == (0.0 if no_decay else 0.01), name
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)  # the rate the Trainer logs


@pytest.mark.parametrize(
    "freezing, is_frozen",
    [
        (
            dict(freeze_layers=1, freeze_heads=["ner"]),
            lambda name: "embeddings" in name or ".layer.0." in name or ".ner." in name,
        ),
        (dict(freeze_backbone=True), lambda name: name.startswith("backbone.")),
        (  # with intent-aware tags and the heads' own pooling, the frozen intent head takes both along
            dict(freeze_heads=["intent"]),
            lambda name: ".intent." in name or name.startswith("head_pooling."),
        ),
    ],
)
def test_frozen_parameters_stay_identical_and_get_no_optimizer_state(tokenizer, tmp_path, freezing, is_frozen):
    own_parts = {"sentence_head_pooling": "attention", "sentence_aware_token_heads": True}
    model = tiny_model(use_crf=True, **(own_parts if freezing.get("freeze_heads") == ["intent"] else {})).train()
    before = snapshot(model)
    trainer = make_trainer(tokenizer, tmp_path, model=model, max_steps=4, weight_decay=0.1, **freezing)
    trainer.train()
    optimized = {id(parameter) for group in trainer.optimizer.param_groups for parameter in group["params"]}
    with_state = {id(parameter) for parameter in trainer.optimizer.state}
    frozen = [name for name, _ in model.named_parameters() if is_frozen(name)]
    assert frozen and len(frozen) < len(before)
    for name, parameter in model.named_parameters():
        if is_frozen(name):
            assert torch.equal(parameter, before[name]), name
            assert id(parameter) not in optimized and id(parameter) not in with_state, name
        else:
            assert id(parameter) in with_state and not torch.equal(parameter, before[name]), name


def test_uncertainty_weights_are_learned_and_saved(tokenizer, tmp_path):
    model = tiny_model().train()
    assert model.log_task_variances is None
    set_loss_weighting(model, uncertainty_weighting=True)
    trainer = make_trainer(
        tokenizer,
        tmp_path,
        model=model,
        head_learning_rate=5e-2,
        save_strategy="steps",
        save_steps=12,
    )
    assert model.config.uncertainty_weighting and model.log_task_variances is not None
    trainer.train()
    learned = model.log_task_variances.detach().clone()
    assert not torch.equal(learned, torch.zeros(2))
    assert "uncertainty_weight_intent" in trainer.state.log_history[0]
    checkpoint = tmp_path / "out" / "checkpoint-12"
    with safe_open(checkpoint / "model.safetensors", framework="pt") as weights:
        assert torch.equal(weights.get_tensor("log_task_variances"), learned)
    reloaded = MultiTaskBertModel.from_pretrained(checkpoint)
    assert reloaded.config.uncertainty_weighting
    assert torch.equal(reloaded.log_task_variances.detach(), learned)


def test_resuming_gives_the_weights_of_an_uninterrupted_run(tokenizer, tmp_path):
    settings = dict(
        max_steps=6,
        save_strategy="steps",
        save_steps=3,
        layerwise_lr_decay=0.8,
        warmup_steps=2,
        weight_decay=0.01,
    )
    uninterrupted = make_trainer(
        tokenizer, tmp_path / "a", model=tiny_model(use_crf=True, uncertainty_weighting=True).train(), **settings
    )
    uninterrupted.train()
    resumed = make_trainer(
        tokenizer, tmp_path / "b", model=tiny_model(use_crf=True, uncertainty_weighting=True).train(), **settings
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "out" / "checkpoint-3"))
    assert resumed.state.global_step == 6
    expected = uninterrupted.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name  # bit-identical on CPU


def test_evaluate_and_predict_give_viterbi_ids_and_metrics(tokenizer, tmp_path):
    model = tiny_model(use_crf=True).train()
    trainer = make_trainer(tokenizer, tmp_path, model=model, max_steps=4)
    trainer.train()
    dataset = tokenize(tokenizer, repeat=1)
    output = trainer.predict(dataset)
    batch = make_collator(tokenizer)(dataset.to_list())
    model.eval()
    with torch.no_grad():
        logits = model(**{key: value for key, value in batch.items() if not key.endswith("_labels")}).logits
    viterbi = model.decode_tags("ner", logits["ner"], batch["ner_labels"] != -100)
    assert set(output.predictions) == {"intent", "ner"}
    assert torch.equal(torch.from_numpy(output.predictions["ner"]), viterbi)
    assert torch.equal(torch.from_numpy(output.predictions["intent"]), logits["intent"].argmax(-1))
    assert torch.equal(torch.from_numpy(output.label_ids["ner"]), batch["ner_labels"])

    labels = batch["intent_labels"].numpy()
    assert output.metrics["test_intent_accuracy"] == pytest.approx((output.predictions["intent"] == labels).mean())
    gold = [[NER_TAGS[i] for i in row[row != -100]] for row in batch["ner_labels"]]
    predicted = [[NER_TAGS[i] for i in row[row != -100]] for row in viterbi]
    assert output.metrics["test_entity_f1"] == pytest.approx(f1_score(gold, predicted))
    assert "eval_sentence_accuracy" in trainer.evaluate()


def test_predict_without_labels_tags_every_attended_token(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path)
    unlabelled = tokenize(tokenizer, repeat=1).remove_columns(["intent_labels", "ner_labels"])
    output = trainer.predict(unlabelled)
    assert output.label_ids is None
    attention = make_collator(tokenizer)(unlabelled.to_list())["attention_mask"].numpy()
    assert ((output.predictions["ner"] != -100) == attention.astype(bool)).all()
    assert output.predictions["intent"].shape == (len(unlabelled),)


def test_arguments_parse_from_the_command_line():
    parser = HfArgumentParser(MultiTaskTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            "out",
            "--layerwise_lr_decay",
            "0.8",
            "--head_learning_rate",
            "1e-3",
            "--freeze_layers",
            "2",
            "--freeze_heads",
            "ner",
        ]
    )
    assert (args.layerwise_lr_decay, args.head_learning_rate, args.freeze_layers) == (0.8, 1e-3, 2)
    assert args.freeze_heads == ["ner"]
    (defaults,) = parser.parse_args_into_dataclasses(["--output_dir", "out", "--freeze_backbone"])
    assert defaults.freeze_backbone
    assert defaults.layerwise_lr_decay == 1.0 and defaults.freeze_heads == [] and defaults.freeze_layers == 0


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(layerwise_lr_decay=0.0), "layerwise_lr_decay"),
        (dict(freeze_layers=-1), "freeze_layers"),
    ],
)
def test_bad_arguments_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        MultiTaskTrainingArguments(output_dir="out", **settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(freeze_heads=["slots"]), "freeze_heads.*slots"),
        (dict(freeze_layers=3), "only 2 layers"),
    ],
)
def test_settings_that_do_not_fit_the_model_are_named(tokenizer, tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(tokenizer, tmp_path, **settings)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: MultiTaskBertConfig(task_weights={"intent": "heavy"}), "task_weights\\['intent'\\]"),
        (lambda: MultiTaskBertConfig(task_weights={"slots": 1.0}), "slots"),
        (lambda: ModelArguments(task_weights='{"intent": 1.0}', uncertainty_weighting=True), "not both"),
        (lambda: ModelArguments(task_weights="[1, 2]"), "JSON object"),
        (lambda: ModelArguments(task_weights="{intent: 1}"), "not JSON"),
    ],
)
def test_bad_loss_weighting_is_named_where_the_config_owns_it(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_loss_weighting_on_training_arguments_is_deprecated_but_still_applied(tokenizer, tmp_path):
    """The old spelling warns, and the trainer still gives the model those weights (for one release)."""
    with pytest.warns(FutureWarning, match="model config owns the loss weighting"):
        args = MultiTaskTrainingArguments(output_dir=str(tmp_path), task_weights={"intent": 2.0})
    model = tiny_model().train()
    MultiTaskTrainer(model=model, args=args, train_dataset=tokenize(tokenizer), data_collator=make_collator(tokenizer))
    assert model.config.task_weights == {"intent": 2.0}
    with pytest.warns(FutureWarning):
        args = MultiTaskTrainingArguments(output_dir=str(tmp_path), uncertainty_weighting=True)
    MultiTaskTrainer(model=model, args=args, train_dataset=tokenize(tokenizer), data_collator=make_collator(tokenizer))
    assert model.config.uncertainty_weighting and model.log_task_variances is not None


def test_three_statements_train_from_the_raw_examples_load_data_returns(tmp_path, tiny_backbone_dir):
    """SetFit's path: the data as `load_data` returns it, `from_data`, `train()`; the model's heads come from the
    data, the validation split is evaluated, and the saved folder answers through the pipeline."""
    from transformers import pipeline

    from conftest import embedded_data_slice
    from multitask_bert import load_data

    (tmp_path / "data").mkdir()
    data = load_data(embedded_data_slice(tmp_path / "data", {"train": 48, "validation": 16}))
    settings = tiny_training_settings(tmp_path, max_steps=8, eval_strategy="steps", eval_steps=8)
    trainer = MultiTaskTrainer.from_data(data, MultiTaskTrainingArguments(**settings), model=str(tiny_backbone_dir))
    trainer.train()

    config = trainer.model.config
    assert config.task_labels("intent") == data["train"].features["intent"].names
    assert set(config.task_labels("ner")) == set(data["train"].features["ner_tags"].feature.names)
    evaluated = [entry for entry in trainer.state.log_history if "eval_intent_accuracy" in entry]
    assert evaluated and 0.0 <= evaluated[-1]["eval_entity_f1"] <= 1.0
    trainer.save_model(tmp_path / "model")
    answer = pipeline(model=str(tmp_path / "model"), trust_remote_code=True)("wake me up at 7 tomorrow")
    assert answer["intent"]["label"] in config.task_labels("intent")


def test_from_data_needs_a_train_split(tmp_path):
    from datasets import DatasetDict

    from conftest import embedded_data_slice
    from multitask_bert import load_data

    (tmp_path / "data").mkdir()
    data = load_data(embedded_data_slice(tmp_path / "data", {"train": 8, "validation": 4}))
    with pytest.raises(ValueError, match=r"needs a train split; the data has \['validation'\]"):
        MultiTaskTrainer.from_data(DatasetDict({"validation": data["validation"]}))


def test_streamed_data_trains_through_from_data_with_embedding_preservation(tmp_path, tiny_backbone_dir):
    """`load_hf_dataset(..., streaming=True)` -> `from_data` -> `train()`: tokenized as read, the teacher vectors
    per batch, the validation stream evaluated."""
    import json

    from datasets import IterableDataset

    from conftest import embedded_data_slice
    from multitask_bert import load_data
    from multitask_bert.training.data import load_hf_dataset, task_label_lists

    (tmp_path / "data").mkdir()
    data = load_data(embedded_data_slice(tmp_path / "data", {"train": 32, "validation": 8}))
    files = {}
    for split, rows in data.items():
        names = {"intent": rows.features["intent"].names, "ner": rows.features["ner_tags"].feature.names}
        files[split] = str(tmp_path / f"{split}.json")
        with open(files[split], "w", encoding="utf-8") as out:
            for row in rows:
                tags = [names["ner"][tag] for tag in row["ner_tags"]]
                out.write(
                    json.dumps({"tokens": row["tokens"], "intent": names["intent"][row["intent"]], "ner_tags": tags})
                )
                out.write("\n")
    streamed = load_hf_dataset("json", data_files=files, streaming=True, label_lists=task_label_lists(data))
    settings = tiny_training_settings(tmp_path, max_steps=4, eval_strategy="steps", eval_steps=4)
    trainer = MultiTaskTrainer.from_data(streamed, MultiTaskTrainingArguments(**settings), model=str(tiny_backbone_dir))
    assert isinstance(trainer.train_dataset, IterableDataset)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and all(entry["loss_embedding_preservation"] > 0 for entry in logged)
    assert any("eval_intent_accuracy" in entry for entry in trainer.state.log_history)


def test_from_data_refuses_a_model_whose_label_ids_the_data_does_not_share(tmp_path, tiny_backbone_dir):
    from conftest import embedded_data_slice
    from multitask_bert import load_data
    from multitask_bert.training.loading import load_tokenizer

    (tmp_path / "data").mkdir()
    folder = embedded_data_slice(tmp_path / "data", {"train": 32})
    data = load_data(folder)
    intents = data["train"].features["intent"].names
    model = MultiTaskBertModel.from_backbone(str(tiny_backbone_dir), intent_labels=intents[::-1])  # other ids
    with pytest.raises(ValueError, match=r"not the model's .* in id order: read the data with the model's"):
        MultiTaskTrainer.from_data(data, MultiTaskTrainingArguments(**tiny_training_settings(tmp_path)), model=model)
    data = load_data(folder, label_lists={"intent": model.config.task_labels("intent")})
    args = MultiTaskTrainingArguments(**tiny_training_settings(tmp_path))
    trainer = MultiTaskTrainer.from_data(data, args, model=model, tokenizer=load_tokenizer(tiny_backbone_dir))
    assert trainer.model is model
