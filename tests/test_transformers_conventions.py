"""transformers' generic model and config checks, ported to MultiTaskBert on a tiny config.

Ported from transformers' `tests/test_modeling_common.py` (`ModelTesterMixin`) and
`tests/test_configuration_common.py` (`ConfigTester`), for what applies to an encoder-only model:

- save/load round trip (outputs, weight names, no missing or unexpected keys), determinism, a bare encoder checkpoint
  loading into the encoder (`base_model_prefix`), missing weights initialised on load;
- config: to_json_string, to_json_file/from_json_file, to_dict/from_dict, save_pretrained/from_pretrained (also to a
  subfolder), the composite encoder sub-config keeping its type, init without arguments, common keyword arguments,
  `num_labels`/`id2label`, the common text properties (on `get_text_config()`, as for composite configs), pickling;
- batching equivalence, padding and attention-mask invariance;
- tuple outputs (`return_dict=False`, by keyword and by config) equal to the `ModelOutput`;
- hidden states and attentions, by keyword and by config, keyword over config, attentions last, gradients kept;
- `inputs_embeds` matching `input_ids`, forward signature and `main_input_name`;
- training: every trainable weight gets a gradient, gradient checkpointing (recomputes the layers, same gradients);
- input embeddings: get/set, `resize_token_embeddings` (grow, shrink, `pad_to_multiple_of`, loss, save/reload),
  `enable_input_require_grads`;
- eager vs sdpa attention (from_pretrained and `set_attn_implementation`), bf16 loading (`dtype` and `torch_dtype`),
  `torch.compile`, initialisation of every weight (`_config_zero_init`), init on the meta device, pickling;
- `get_text_features` as transformers 5 models return it.

Left out, and why:
- `logits` is a dict of task heads, so the single-head conventions (`problem_type`, `num_labels` sizing the head,
  `labels=`) do not fit; the task heads, `<task>_labels` and per-task losses are tested instead (here and in
  `test_modeling.py`), and `num_labels`/`id2label` only as inherited config attributes the model does not use.
- The output's `last_hidden_state` comes after `loss` and `losses` (so, without labels, first, as the
  feature-extraction pipeline reads it); sentence-transformers takes `get_text_features()`, tested too.
- Flash attention, flex attention, multi-GPU data parallel, model parallelism and `device_map` tests: no GPU and
  one device here (the encoder's own transformers tests cover those kernels).
- TorchScript, head masking and head pruning: removed from transformers 5.
- Tied-weights and `resize_position_embeddings` tests: the model has no LM head to tie, and BERT encoders do not
  resize positions.
- Generation and pipeline-mixin tests: not a generative model; the `joint-intent-ner` pipeline has its own tests.
- `torch.export`: the ONNX export (`test_export.py`) goes through it.
- `torch.compile` with the inductor backend: about a minute of C++ code generation on this 2-core machine; the test
  compiles through dynamo and AOTAutograd (`aot_eager`), which traces the same graph.
- `test_model_from_pretrained` (Hub download) and PEFT adapters (peft is not a dependency).
- Mismatched head sizes: this model raises a `ValueError` naming the task instead of transformers' warning
  (`test_modeling.py` / `test_bad_input.py` test that).
"""

from __future__ import annotations

import copy
import inspect
import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, BertConfig, BertModel, DistilBertConfig, PreTrainedConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling

from conftest import INTENTS, NER_TAGS, tiny_encoder_config, tiny_model
from multitask_bert import MultiTaskBertConfig, MultiTaskBertModel, MultiTaskBertOutput

TEXTS = ["wake me at 7", "cancel lunch with Anna on friday at noon please", "hi"]
NUM_LAYERS, NUM_HEADS, HIDDEN = 2, 2, 32
NO_DROPOUT = {"encoder": tiny_encoder_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)}


def batch_of(tokenizer, texts=TEXTS):
    return tokenizer(texts, padding=True, return_tensors="pt")


def assert_outputs_close(left: MultiTaskBertOutput, right: MultiTaskBertOutput, atol: float = 1e-5) -> None:
    torch.testing.assert_close(left.sentence_embedding, right.sentence_embedding, atol=atol, rtol=0)
    assert left.logits.keys() == right.logits.keys()
    for task in left.logits:
        torch.testing.assert_close(left.logits[task], right.logits[task], atol=atol, rtol=0)


def labels_for(batch) -> dict[str, torch.Tensor]:
    ner = torch.randint(len(NER_TAGS), batch["input_ids"].shape, generator=torch.Generator().manual_seed(0))
    return {"intent_labels": torch.arange(len(batch["input_ids"])) % len(INTENTS), "ner_labels": ner}


# Save and load


def test_save_load_round_trip_keeps_outputs_and_weight_names(tmp_path, tokenizer):
    model = tiny_model(use_crf=True, uncertainty_weighting=True)
    batch = batch_of(tokenizer)
    with torch.no_grad():
        before = model(**batch)
        assert_outputs_close(before, model(**batch), atol=0)  # determinism
    model.save_pretrained(tmp_path)
    assert set(load_file(tmp_path / "model.safetensors")) == set(model.state_dict())
    assert all(name.startswith(("backbone.", "heads.", "crfs.", "log_task_variances")) for name in model.state_dict())
    loaded, info = MultiTaskBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    with torch.no_grad():
        assert_outputs_close(before, loaded.eval()(**batch), atol=1e-6)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_base_model_is_the_encoder_and_a_bare_encoder_checkpoint_loads_into_it(tmp_path):
    model = tiny_model()
    assert model.base_model_prefix == "backbone" and model.base_model is model.backbone
    torch.manual_seed(1)
    bert = BertModel(tiny_encoder_config())  # with its pooler, as BERT checkpoints are saved
    bert.save_pretrained(tmp_path)
    config = MultiTaskBertConfig(encoder=tiny_encoder_config())
    loaded, info = MultiTaskBertModel.from_pretrained(tmp_path, config=config, output_loading_info=True)
    assert set(info["missing_keys"]) == {
        f"heads.{task}.{kind}" for task in ("intent", "ner") for kind in ("weight", "bias")
    }
    assert set(info["unexpected_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    for name, tensor in loaded.backbone.state_dict().items():
        assert torch.equal(tensor, bert.state_dict()[name]), name


def test_missing_weights_are_initialised_on_load(tmp_path):
    model = tiny_model(use_crf=True, uncertainty_weighting=True)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith("backbone."):
                parameter.fill_(7.0)
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file(
        {name: tensor for name, tensor in weights.items() if name.startswith("backbone.")},
        tmp_path / "model.safetensors",
    )
    loaded, info = MultiTaskBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert {name for name in model.state_dict() if not name.startswith("backbone.")} == set(info["missing_keys"])
    std = model.config.encoder.initializer_range
    for task, head in loaded.heads.items():
        assert torch.all(head.bias == 0), task
        assert 0.5 * std < head.weight.std().item() < 1.5 * std, task
    for parameter in [*loaded.crfs.parameters(), loaded.log_task_variances]:
        assert torch.all(parameter == 0)


# Config (ConfigTester)


def comparable(config: PreTrainedConfig) -> dict:
    """The config's dict without `_name_or_path`, which records where it was loaded from."""
    return {key: value for key, value in config.to_dict().items() if key != "_name_or_path"}


def test_config_round_trips(tmp_path):
    config = MultiTaskBertConfig(
        encoder=tiny_encoder_config(),
        tasks={"intent": {"level": "sentence", "labels": INTENTS}, "ner": {"level": "token", "labels": NER_TAGS}},
        pooling="max",
        use_crf=True,
        task_weights={"ner": 0.5},
        max_seq_length=64,
    )
    config.save_pretrained(tmp_path / "saved")
    expected = comparable(config)  # saving adds the remote-code `auto_map`
    assert expected["auto_map"] == {"AutoConfig": "configuration_multitask_bert.MultiTaskBertConfig"}
    assert comparable(MultiTaskBertConfig.from_pretrained(tmp_path / "saved")) == expected
    assert json.loads(config.to_json_string())["tasks"] == config.tasks
    assert comparable(MultiTaskBertConfig.from_dict(expected)) == expected
    config.to_json_file(tmp_path / "config.json")
    assert comparable(MultiTaskBertConfig.from_json_file(tmp_path / "config.json")) == expected
    assert comparable(AutoConfig.from_pretrained(tmp_path / "saved")) == expected
    config.save_pretrained(tmp_path / "outer" / "inner")
    assert comparable(MultiTaskBertConfig.from_pretrained(tmp_path / "outer", subfolder="inner")) == expected
    assert comparable(pickle.loads(pickle.dumps(config))) == expected


def test_composite_config_keeps_its_encoder_type(tmp_path):
    encoder = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    MultiTaskBertConfig(encoder=encoder).save_pretrained(tmp_path)
    loaded = MultiTaskBertConfig.from_pretrained(tmp_path)
    assert isinstance(loaded.encoder, DistilBertConfig)
    assert loaded.encoder.to_dict() == encoder.to_dict()
    assert "encoder" in MultiTaskBertConfig.sub_configs


def test_config_inits_without_arguments_and_takes_common_arguments():
    default = MultiTaskBertConfig()
    assert isinstance(default.encoder, BertConfig) and default.tasks
    common = {"output_hidden_states": True, "output_attentions": True, "return_dict": False, "id2label": {0: "a"}}
    config = MultiTaskBertConfig(**common)
    for key, value in common.items():
        assert getattr(config, key) == value, key
    assert MultiTaskBertConfig(num_labels=5).num_labels == 5
    config.num_labels = 3
    assert len(config.id2label) == 3 and len(config.label2id) == 3


def test_text_config_is_the_encoders():
    encoder = tiny_encoder_config(vocab_size=123)
    config = MultiTaskBertConfig(encoder=encoder)
    text_config = config.get_text_config()
    assert isinstance(text_config, PreTrainedConfig) and text_config is config.encoder
    assert (text_config.vocab_size, text_config.hidden_size) == (123, HIDDEN)
    assert (text_config.num_attention_heads, text_config.num_hidden_layers) == (NUM_HEADS, NUM_LAYERS)
    assert config.get_text_config(decoder=True) is config.encoder


# Batching, padding and masks


@pytest.mark.parametrize(("pooling", "subword_pooling"), [("mean", "first"), ("cls", "first"), ("max", "mean")])
def test_batching_equivalence(tokenizer, pooling, subword_pooling):
    model = tiny_model(pooling=pooling, subword_pooling=subword_pooling)
    if subword_pooling == "mean":
        model.mark_word_continuations(tokenizer)
    with torch.no_grad():
        together = model(**batch_of(tokenizer))
        for row, text in enumerate(TEXTS):
            alone = model(**batch_of(tokenizer, [text]))
            length = alone.logits["ner"].shape[1]
            torch.testing.assert_close(together.sentence_embedding[row], alone.sentence_embedding[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(together.logits["intent"][row], alone.logits["intent"][0], atol=1e-5, rtol=0)
            torch.testing.assert_close(together.logits["ner"][row, :length], alone.logits["ner"][0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("subword_pooling", ["first", "mean"])
def test_extra_padding_and_masked_tokens_change_nothing(tokenizer, subword_pooling):
    model = tiny_model(subword_pooling=subword_pooling)
    if subword_pooling == "mean":
        model.mark_word_continuations(tokenizer)
    batch = batch_of(tokenizer)
    padded = tokenizer(TEXTS, padding="max_length", max_length=40, return_tensors="pt")
    scrambled = dict(padded)
    scrambled["input_ids"] = padded["input_ids"].masked_fill(padded["attention_mask"] == 0, 1996)
    length = batch["input_ids"].shape[1]
    with torch.no_grad():
        reference = model(**batch)
        for inputs in (padded, scrambled):
            output = model(**inputs)
            torch.testing.assert_close(output.sentence_embedding, reference.sentence_embedding, atol=1e-5, rtol=0)
            torch.testing.assert_close(output.logits["intent"], reference.logits["intent"], atol=1e-5, rtol=0)
            mask = batch["attention_mask"].bool()
            torch.testing.assert_close(
                output.logits["ner"][:, :length][mask], reference.logits["ner"][mask], atol=1e-5, rtol=0
            )


# Output conventions


def test_tuple_outputs_by_keyword_and_by_config(tokenizer):
    model = tiny_model()
    batch = {**batch_of(tokenizer), **labels_for(batch_of(tokenizer))}
    with torch.no_grad():
        as_dict = model(**batch, output_hidden_states=True)
        as_tuple = model(**batch, output_hidden_states=True, return_dict=False)
        model.config.return_dict = False
        by_config = model(**batch, output_hidden_states=True)
        keyword_wins = model(**batch, return_dict=True)
    assert isinstance(as_tuple, tuple) and isinstance(by_config, tuple)
    assert isinstance(keyword_wins, MultiTaskBertOutput)
    for found in (as_tuple, by_config):
        assert len(found) == len(as_dict.to_tuple()) == 6  # loss, losses, last_hidden_state, logits, embedding, states
        for left, right in zip(found, as_dict.to_tuple(), strict=True):
            if isinstance(left, torch.Tensor):
                assert torch.equal(left, right)
            elif isinstance(left, dict):
                assert all(torch.equal(left[key], right[key]) for key in right)
            else:
                assert all(torch.equal(a, b) for a, b in zip(left, right, strict=True))


def test_hidden_states_by_keyword_and_by_config(tokenizer):
    model = tiny_model()
    batch = batch_of(tokenizer)
    shape = (*batch["input_ids"].shape, HIDDEN)
    with torch.no_grad():
        assert model(**batch).hidden_states is None
        by_keyword = model(**batch, output_hidden_states=True).hidden_states
        model.config.output_hidden_states = True
        by_config = model(**batch).hidden_states
        assert model(**batch, output_hidden_states=False).hidden_states is None
        features = model.get_text_features(**batch)
    for hidden_states in (by_keyword, by_config):
        assert len(hidden_states) == NUM_LAYERS + 1
        assert all(state.shape == shape for state in hidden_states)
    assert torch.equal(by_keyword[-1], features.last_hidden_state)
    assert len(features.hidden_states) == NUM_LAYERS + 1


def test_attentions_by_keyword_and_by_config(tokenizer):
    model = tiny_model()
    model.set_attn_implementation("eager")  # as in transformers, only eager attention returns its weights
    batch = batch_of(tokenizer)
    batch_size, length = batch["input_ids"].shape
    with torch.no_grad():
        assert model(**batch).attentions is None
        by_keyword = model(**batch, output_attentions=True)
        both = model(**batch, output_attentions=True, output_hidden_states=True, return_dict=False)
        model.config.output_attentions = True
        by_config = model(**batch).attentions
        assert model(**batch, output_attentions=False).attentions is None
    for attentions in (by_keyword.attentions, by_config, both[-1]):
        assert len(attentions) == NUM_LAYERS
        assert all(layer.shape == (batch_size, NUM_HEADS, length, length) for layer in attentions)
        torch.testing.assert_close(attentions[0].sum(-1), torch.ones(batch_size, NUM_HEADS, length))
        padded_keys = (batch["attention_mask"] == 0)[:, None, None, :].expand_as(attentions[0])
        assert padded_keys.any() and torch.all(attentions[0][padded_keys] == 0)
    assert len(both) == len(by_keyword.to_tuple()) + 1  # hidden states, then attentions last


def test_hidden_states_and_attentions_keep_gradients(tokenizer):
    model = tiny_model().train()
    model.set_attn_implementation("eager")
    output = model(**batch_of(tokenizer), output_attentions=True, output_hidden_states=True)
    output.hidden_states[0].retain_grad()
    output.attentions[0].retain_grad()
    (output.sentence_embedding.sum() + output.logits["ner"].sum()).backward()
    assert output.hidden_states[0].grad is not None and output.attentions[0].grad is not None


def test_inputs_embeds_match_input_ids_and_signature(tokenizer):
    model = tiny_model()
    batch = batch_of(tokenizer)
    with torch.no_grad():
        from_ids = model(**batch)
        embeds = model.get_input_embeddings()(batch["input_ids"])
        from_embeds = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    assert_outputs_close(from_ids, from_embeds, atol=1e-6)
    assert list(inspect.signature(model.forward).parameters)[:2] == ["input_ids", "attention_mask"]
    assert model.main_input_name == "input_ids"


def test_text_features_follow_transformers_5(tokenizer):
    model = tiny_model(normalize_embeddings=False)
    batch = batch_of(tokenizer)
    with torch.no_grad():
        features = model.get_text_features(**batch, output_hidden_states=True)
        as_tuple = model.get_text_features(**batch, return_dict=False)
        output = model(**batch)
    assert isinstance(features, BaseModelOutputWithPooling)
    assert torch.equal(features.pooler_output, output.sentence_embedding)
    assert features.last_hidden_state.shape == (*batch["input_ids"].shape, HIDDEN)
    assert len(features.hidden_states) == NUM_LAYERS + 1
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[1], output.sentence_embedding)


# Training


def test_training_gives_every_weight_a_gradient_and_checkpointing_recomputes_layers(tokenizer):
    batch = batch_of(tokenizer)
    labels = labels_for(batch)
    gradients, layer_calls = {}, {}
    for checkpointing in (False, True):
        model = tiny_model(use_crf=True, uncertainty_weighting=True, classifier_dropout=0.0, **NO_DROPOUT).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        assert model.is_activation_checkpointing == checkpointing
        calls = []
        model.backbone.encoder.layer[0].intermediate.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        model(**batch, **labels).loss.backward()
        layer_calls[checkpointing] = len(calls)
        gradients[checkpointing] = {name: parameter.grad for name, parameter in model.named_parameters()}
    assert layer_calls == {False: 1, True: 2}  # checkpointed layers run again in the backward pass
    for name, gradient in gradients[False].items():
        assert gradient is not None and gradient.abs().sum() > 0, name
        torch.testing.assert_close(gradients[True][name], gradient, atol=1e-6, rtol=1e-5)
    model.activation_checkpointing_disable()
    assert not model.is_activation_checkpointing


# Input embeddings


def test_input_embeddings_get_and_set(tokenizer):
    model = tiny_model()
    assert model.get_input_embeddings() is model.backbone.embeddings.word_embeddings
    batch = batch_of(tokenizer)
    with torch.no_grad():
        before = model(**batch).sentence_embedding
        replacement = torch.nn.Embedding(model.config.encoder.vocab_size, HIDDEN)
        model.set_input_embeddings(replacement)
        assert model.get_input_embeddings() is replacement
        assert not torch.allclose(model(**batch).sentence_embedding, before)


@pytest.mark.parametrize("subword_pooling", ["first", "mean"])
def test_resize_token_embeddings(tmp_path, tokenizer, subword_pooling):
    model = tiny_model(subword_pooling=subword_pooling)
    if subword_pooling == "mean":
        model.mark_word_continuations(tokenizer)
    old_vocab = model.config.encoder.vocab_size
    old_rows = model.get_input_embeddings().weight.detach().clone()
    embeddings = model.resize_token_embeddings(old_vocab + 10)
    assert embeddings.weight.shape == (old_vocab + 10, HIDDEN)
    assert model.config.get_text_config().vocab_size == model.config.encoder.vocab_size == old_vocab + 10
    assert torch.equal(model.get_input_embeddings().weight[:old_vocab], old_rows)
    batch = batch_of(tokenizer)
    batch["input_ids"][:, 1] = old_vocab + 9  # a new token
    loss = model(**batch, **labels_for(batch)).loss
    assert torch.isfinite(loss)
    loss.backward()
    assert model.get_input_embeddings().weight.grad[old_vocab + 9].abs().sum() > 0

    model.save_pretrained(tmp_path)
    reloaded = MultiTaskBertModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.encoder.vocab_size == old_vocab + 10
    with torch.no_grad():
        assert_outputs_close(model.eval()(**batch), reloaded(**batch), atol=1e-6)

    assert model.resize_token_embeddings(old_vocab - 2).weight.shape[0] == old_vocab - 2
    assert model.resize_token_embeddings(old_vocab + 1, pad_to_multiple_of=64).weight.shape[0] % 64 == 0
    assert model.config.encoder.vocab_size % 64 == 0
    if subword_pooling == "mean":  # the word continuations follow the vocabulary; new tokens start words
        assert model.word_continuations.shape == (model.config.encoder.vocab_size,)
        assert torch.equal(model.word_continuations[: old_vocab - 2], reloaded.word_continuations[: old_vocab - 2])
        assert not model.word_continuations[old_vocab - 2 :].any()


def test_enable_input_require_grads(tokenizer):
    model = tiny_model().train()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.enable_input_require_grads()
    output = model(**batch_of(tokenizer), output_hidden_states=True)
    assert output.hidden_states[0].requires_grad


# Attention implementations, dtypes, compile, initialisation, pickling


def test_eager_and_sdpa_attention_agree(tmp_path, tokenizer):
    tiny_model().save_pretrained(tmp_path)
    batch = batch_of(tokenizer)
    outputs = {}
    for implementation in ("eager", "sdpa"):
        model = MultiTaskBertModel.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert model.config.encoder._attn_implementation == implementation
        assert model.backbone.config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = model(**batch)
    assert_outputs_close(outputs["eager"], outputs["sdpa"], atol=1e-5)
    model.set_attn_implementation("eager")
    assert model.backbone.config._attn_implementation == "eager"


@pytest.mark.parametrize("argument", ["dtype", "torch_dtype"])
def test_bf16_loading(tmp_path, tokenizer, argument):
    model = tiny_model(use_crf=True)
    model.save_pretrained(tmp_path)
    loaded = MultiTaskBertModel.from_pretrained(tmp_path, **{argument: torch.bfloat16}).eval()
    assert {parameter.dtype for parameter in loaded.parameters()} == {torch.bfloat16}
    assert loaded.dtype == torch.bfloat16
    batch = batch_of(tokenizer)
    with torch.no_grad():
        half, full = loaded(**batch), model(**batch)
    assert half.sentence_embedding.dtype == torch.bfloat16
    torch.testing.assert_close(half.sentence_embedding.float(), full.sentence_embedding, atol=0.03, rtol=0)
    for task in full.logits:
        torch.testing.assert_close(half.logits[task].float(), full.logits[task], atol=0.03, rtol=0)
    tags = loaded.decode_tags("ner", half.logits["ner"], batch["attention_mask"])
    assert tags.shape == batch["input_ids"].shape


def test_torch_compile_matches_eager(tokenizer):
    model = tiny_model()
    batch = batch_of(tokenizer)
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        assert_outputs_close(compiled(**batch), model(**batch), atol=1e-6)


def test_every_weight_is_initialised_from_the_config():
    """`_config_zero_init`: with a ~0 initializer range every weight is ~0, or 1 (LayerNorm scales)."""
    model = tiny_model(encoder=tiny_encoder_config(initializer_range=1e-10), use_crf=True, uncertainty_weighting=True)
    for name, parameter in model.named_parameters():
        assert ((parameter.mean() * 1e9).round() / 1e9).item() in (0.0, 1.0), name


def test_model_builds_on_the_meta_device():
    with torch.device("meta"):
        model = tiny_model(use_crf=True)
    assert {parameter.device.type for parameter in model.parameters()} == {"meta"}


def test_pickling_and_deep_copy_keep_the_model(tokenizer):
    model = tiny_model(use_crf=True)
    batch = batch_of(tokenizer)
    with torch.no_grad():
        expected = model(**batch)
        for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            assert clone.config.to_dict() == model.config.to_dict()
            assert_outputs_close(clone(**batch), expected, atol=0)
