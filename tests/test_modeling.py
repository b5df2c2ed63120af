"""The model itself: outputs, pooling and masking, losses, CRF, config round trips and bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import AutoConfig, AutoModel, DistilBertConfig

from conftest import INTENTS, NER_TAGS, tiny_encoder_config, tiny_model
from multitask_bert import MultiTaskBertConfig, MultiTaskBertModel
from multitask_bert.modeling.modeling_multitask_bert import ConditionalRandomField


def encode(tokenizer, texts):
    return tokenizer(texts, padding=True, return_tensors="pt")


def test_output_shapes_and_joint_loss(tokenizer):
    model = tiny_model()
    batch = encode(tokenizer, ["wake me at 7", "cancel my meeting with Anna tomorrow"])
    ner_labels = torch.zeros_like(batch["input_ids"])
    ner_labels[:, 0] = -100
    output = model(**batch, intent_labels=torch.tensor([0, 2]), ner_labels=ner_labels)
    assert output.logits["intent"].shape == (2, len(INTENTS))
    assert output.logits["ner"].shape == (*batch["input_ids"].shape, len(NER_TAGS))
    assert output.sentence_embedding.shape == (2, 32)
    assert torch.allclose(output.sentence_embedding.norm(dim=-1), torch.ones(2), atol=1e-6)
    assert set(output.losses) == {"intent", "ner"}
    assert torch.isclose(output.loss, output.losses["intent"] + output.losses["ner"])


def test_only_one_task_labelled_gives_only_that_loss(tokenizer):
    model = tiny_model(task_weights={"intent": 0.5})
    batch = encode(tokenizer, ["set a timer"])
    output = model(**batch, intent_labels=torch.tensor([1]))
    assert set(output.losses) == {"intent"}
    assert torch.isclose(output.loss, 0.5 * output.losses["intent"])
    all_ignored = torch.full_like(batch["input_ids"], -100)
    output = model(**batch, ner_labels=all_ignored)
    assert output.loss.item() == 0.0


@pytest.mark.parametrize(
    "pooling",
    [{"pooling": "mean"}, {"pooling": "cls"}, {"pooling": "max"}, {"sentence_head_pooling": "attention"}],
)
def test_padding_never_changes_embedding_or_intent(tokenizer, pooling):
    model = tiny_model(**pooling)
    alone = model(**encode(tokenizer, ["remind me"]))
    padded = model(**encode(tokenizer, ["remind me", "schedule a very long meeting with the whole team on friday"]))
    assert torch.allclose(alone.sentence_embedding[0], padded.sentence_embedding[0], atol=1e-5)
    assert torch.allclose(alone.logits["intent"][0], padded.logits["intent"][0], atol=1e-5)


def test_mean_pooling_is_masked_average(tokenizer):
    model = tiny_model(normalize_embeddings=False)
    batch = encode(tokenizer, ["one", "one two three four"])
    output = model(**batch, output_hidden_states=True)
    states, mask = output.hidden_states[-1], batch["attention_mask"].unsqueeze(-1).float()
    expected = (states * mask).sum(1) / mask.sum(1)
    assert torch.allclose(output.sentence_embedding, expected, atol=1e-6)


def test_sentence_heads_own_pooling_leaves_the_embedding_alone(tmp_path, tokenizer):
    shared = tiny_model()
    own = tiny_model(sentence_head_pooling="attention")
    own.load_state_dict(shared.state_dict(), strict=False)  # same encoder and heads; the scorer is the only extra
    torch.nn.init.normal_(own.head_pooling.scorer.weight, std=1.0)
    batch = encode(tokenizer, ["wake me at 7", "cancel my meeting with Anna tomorrow"])
    before, after = shared(**batch), own(**batch)
    assert torch.equal(before.sentence_embedding, after.sentence_embedding)
    assert torch.equal(before.logits["ner"], after.logits["ner"])
    assert not torch.allclose(before.logits["intent"], after.logits["intent"], atol=1e-3)
    labels = torch.tensor([0, 2])
    own(**batch, intent_labels=labels).loss.backward()
    assert own.head_pooling.scorer.weight.grad.abs().sum() > 0
    own.save_pretrained(tmp_path)
    loaded = MultiTaskBertModel.from_pretrained(tmp_path).eval()
    assert loaded.config.sentence_head_pooling == "attention"
    torch.testing.assert_close(loaded(**batch).logits["intent"], own.eval()(**batch).logits["intent"])


def test_sentence_aware_token_heads_read_the_sentence_predictions(tmp_path, tokenizer):
    tasks = {
        "intent": {"level": "sentence", "labels": INTENTS},
        "ner": {"level": "token", "labels": NER_TAGS},
        "mood": {"level": "sentence", "labels": ["calm", "urgent"]},
    }
    plain = tiny_model(tasks=tasks)
    aware = tiny_model(tasks=tasks, sentence_aware_token_heads=True)
    assert set(aware.sentence_label_embeddings) == {"intent", "mood"}
    batch = encode(tokenizer, ["wake me at 7", "cancel my meeting with Anna tomorrow"])
    before = aware(**batch)
    plain.load_state_dict(aware.state_dict(), strict=False)  # all but the label embeddings
    assert torch.equal(plain(**batch).logits["intent"], before.logits["intent"])
    assert not torch.allclose(plain(**batch).logits["ner"], before.logits["ner"], atol=1e-4)
    with torch.no_grad():
        aware.heads["intent"].bias[0] += 5.0  # another intent prediction moves the tags, not the other heads
    moved = aware(**batch)
    assert not torch.allclose(moved.logits["intent"], before.logits["intent"])
    assert torch.equal(moved.logits["mood"], before.logits["mood"])
    assert not torch.allclose(moved.logits["ner"], before.logits["ner"], atol=1e-4)

    ner_labels = torch.zeros_like(batch["input_ids"])
    aware(**batch, ner_labels=ner_labels).loss.backward()  # the tag loss alone trains the sentence heads too
    assert aware.heads["intent"].weight.grad.abs().sum() > 0
    assert aware.sentence_label_embeddings["mood"].weight.grad.abs().sum() > 0
    aware.save_pretrained(tmp_path)
    loaded = MultiTaskBertModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**batch).logits["ner"], aware(**batch).logits["ner"])


def test_third_head_round_trips_through_save_and_load(tmp_path, tokenizer):
    tasks = {
        "intent": {"level": "sentence", "labels": INTENTS},
        "ner": {"level": "token", "labels": NER_TAGS},
        "sentiment": {"level": "sentence", "labels": ["negative", "neutral", "positive"]},
    }
    model = tiny_model(tasks=tasks, use_crf=True, pooling="max")
    model.save_pretrained(tmp_path)
    loaded = MultiTaskBertModel.from_pretrained(tmp_path).eval()
    assert loaded.config.tasks == tasks
    assert loaded.config.pooling == "max" and loaded.config.use_crf
    assert loaded.config.task_labels("sentiment") == ["negative", "neutral", "positive"]
    batch = encode(tokenizer, ["I love this alarm"])
    before, after = model(**batch), loaded(**batch)
    for task in tasks:
        assert torch.allclose(before.logits[task], after.logits[task], atol=1e-6)
    output = loaded(**batch, sentiment_labels=torch.tensor([2]))
    assert set(output.losses) == {"sentiment"}


def test_other_encoder_family_works():
    encoder = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    model = MultiTaskBertModel(MultiTaskBertConfig(encoder=encoder)).eval()
    output = model(input_ids=torch.tensor([[1, 5, 7, 2]]), token_type_ids=torch.zeros(1, 4, dtype=torch.long))
    assert output.sentence_embedding.shape == (1, 16)


def test_auto_classes_know_the_model(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MultiTaskBertConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), MultiTaskBertModel)


def brute_force_paths(crf: ConditionalRandomField, emissions: torch.Tensor):
    """Score of every tag path over a 1 x T x K lattice."""
    num_steps, num_tags = emissions.shape[1:]
    scores = {}
    for path in itertools.product(range(num_tags), repeat=num_steps):
        score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        score = score + sum(emissions[0, step, tag] for step, tag in enumerate(path))
        score = score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:], strict=False))
        scores[path] = score
    return scores


def test_crf_viterbi_and_likelihood_match_brute_force():
    torch.manual_seed(3)
    crf = ConditionalRandomField(3)
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    emissions = torch.randn(1, 4, 3)
    scores = brute_force_paths(crf, emissions)
    best_path = max(scores, key=lambda path: scores[path])
    decoded = crf.decode(emissions, torch.ones(1, 4, dtype=torch.bool))
    assert tuple(decoded[0].tolist()) == best_path

    gold = (0, 2, 1, 1)
    expected_nll = torch.logsumexp(torch.stack(list(scores.values())), 0) - scores[gold]
    nll = crf.neg_log_likelihood(emissions, torch.tensor([gold]), torch.ones(1, 4, dtype=torch.bool))
    assert torch.isclose(nll, expected_nll, atol=1e-5)


def test_crf_uses_only_masked_positions():
    """First-sub-token masks have holes: the CRF must skip them, not score them."""
    torch.manual_seed(4)
    crf = ConditionalRandomField(3)
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    emissions = torch.randn(1, 6, 3)
    mask = torch.tensor([[False, True, False, True, True, False]])
    selected = emissions[:, mask[0]]
    scores = brute_force_paths(crf, selected)
    best_path = max(scores, key=lambda path: scores[path])
    decoded = crf.decode(emissions, mask)[0]
    assert tuple(decoded[mask[0]].tolist()) == best_path
    assert (decoded[~mask[0]] == -100).all()


def test_crf_decodes_a_batch_of_different_lengths_as_each_row_alone():
    torch.manual_seed(5)
    crf = ConditionalRandomField(4)
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    emissions = torch.randn(4, 7, 4)
    mask = torch.tensor(
        [
            [True, True, True, True, True, True, True],
            [False, True, False, True, True, False, False],
            [False, False, False, False, False, False, False],
            [True, False, False, False, False, False, True],
        ]
    )
    decoded = crf.decode(emissions, mask)
    assert (decoded[~mask] == -100).all()
    for row in range(4):
        assert torch.equal(decoded[row], crf.decode(emissions[row : row + 1], mask[row : row + 1])[0])
        if mask[row].any():
            scores = brute_force_paths(crf, emissions[row : row + 1, mask[row]])
            assert tuple(decoded[row, mask[row]].tolist()) == max(scores, key=lambda path: scores[path])


def test_crf_model_trains_and_decodes(tokenizer):
    model = tiny_model(use_crf=True).train()
    batch = encode(tokenizer, ["wake me at 7 am"])
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 1:-1] = 0
    output = model(**batch, ner_labels=labels)
    output.loss.backward()
    assert model.crfs["ner"].transitions.grad is not None
    tags = model.decode_tags("ner", output.logits["ner"], labels != -100)
    assert ((tags == -100) == (labels == -100)).all()


def test_subword_mean_pooling_tags_each_word_from_all_its_sub_tokens(tmp_path, tokenizer):
    plain = tiny_model()
    pooled = tiny_model(subword_pooling="mean")
    pooled.load_state_dict(plain.state_dict(), strict=False)  # all but the continuation marks
    pooled.mark_word_continuations(tokenizer)
    texts = ["play unbelievably catchy songs by Kraftwerk", "book a table at Mikkeller's at 6:30 o'clock"]
    batch = encode(tokenizer, texts)
    states = plain.backbone(**batch).last_hidden_state
    own, mean = plain(**batch).logits["ner"], pooled(**batch).logits["ner"]
    for row in range(len(texts)):
        word_ids = batch.word_ids(row)
        words = {word: [i for i, w in enumerate(word_ids) if w == word] for word in set(word_ids) - {None}}
        assert any(len(positions) > 1 for positions in words.values())
        for positions in words.values():
            expected = plain.heads["ner"](states[row, positions].mean(dim=0))
            for position in positions:  # every sub-token reads the whole word; one-piece words are unchanged
                torch.testing.assert_close(mean[row, position], expected)
            if len(positions) == 1:
                torch.testing.assert_close(mean[row, positions[0]], own[row, positions[0]])
            else:
                assert not torch.allclose(mean[row, positions[0]], own[row, positions[0]], atol=1e-4)
        padding = batch["attention_mask"][row] == 0
        cls_and_sep = [i for i, w in enumerate(word_ids) if w is None and not padding[i]]
        torch.testing.assert_close(mean[row, cls_and_sep], own[row, cls_and_sep])  # special tokens stand alone

    # A window of a long text that begins inside a word: its first piece starts a word, not [CLS]'s.
    window = torch.tensor([tokenizer.convert_tokens_to_ids(["[CLS]", "##bly", "##y", "good", "[SEP]"])])
    window_states = plain.backbone(input_ids=window).last_hidden_state[0]
    window_tags = pooled(input_ids=window).logits["ner"][0]
    torch.testing.assert_close(window_tags[0], plain.heads["ner"](window_states[0]))
    torch.testing.assert_close(window_tags[1], plain.heads["ner"](window_states[1:3].mean(dim=0)))

    pooled.save_pretrained(tmp_path)
    loaded = MultiTaskBertModel.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.word_continuations, pooled.word_continuations)
    torch.testing.assert_close(loaded(**batch).logits["ner"], mean)
    plain.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="has no word_continuations of its vocabulary"):
        MultiTaskBertModel.from_pretrained(tmp_path / "plain", subword_pooling="mean")


def test_subword_mean_pooling_refuses_what_it_cannot_pool(tokenizer):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    with pytest.raises(ValueError, match='Only a model with `subword_pooling="mean"`'):
        tiny_model().mark_word_continuations(tokenizer)
    pooled = tiny_model(subword_pooling="mean")
    word_level = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    with pytest.raises(ValueError, match=r"continuation prefix .*\(WordLevel model\) has none"):
        pooled.mark_word_continuations(word_level)
    embeds = pooled.backbone.get_input_embeddings()(encode(tokenizer, ["hello"])["input_ids"])
    with pytest.raises(ValueError, match="finds words in `input_ids`"):
        pooled(inputs_embeds=embeds)


def test_from_backbone_marks_the_word_continuations_of_its_tokenizer(tiny_backbone_dir, tokenizer):
    model = MultiTaskBertModel.from_backbone(str(tiny_backbone_dir), ner_labels=["O"], subword_pooling="mean")
    continuations = {index for token, index in tokenizer.get_vocab().items() if token.startswith("##")}
    assert set(model.word_continuations.nonzero().flatten().tolist()) == continuations


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pooling": "avg"}, "Unknown pooling 'avg'"),
        ({"sentence_head_pooling": "sum"}, "Unknown sentence_head_pooling 'sum'"),
        (
            {"tasks": {"ner": {"level": "token", "labels": ["O"]}}, "sentence_aware_token_heads": True},
            "needs a sentence-level and a token-level task",
        ),
        ({"subword_pooling": "last"}, "Unknown subword_pooling 'last'; choose one of first, mean"),
        ({"tasks": {"intent": {"level": "sentence", "labels": []}}}, "empty label list"),
        ({"tasks": {"ner": {"level": "token", "labels": ["O", "B-X", "O"]}}}, "more than once: ['O']"),
        ({"tasks": {"ner": {"level": "word", "labels": ["O"]}}}, "level 'word'"),
        ({"tasks": {}}, "at least one task"),
        ({"task_weights": {"sentiment": 2.0}}, "do not exist: ['sentiment']"),
    ],
)
def test_bad_config_raises_value_error_naming_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MultiTaskBertConfig(encoder=tiny_encoder_config(), **overrides)


def test_labels_for_missing_head_raise_value_error(tokenizer):
    model = tiny_model()
    batch = encode(tokenizer, ["hello"])
    with pytest.raises(ValueError, match="sentiment_labels"):
        model(**batch, sentiment_labels=torch.tensor([0]))
    with pytest.raises(ValueError, match=r"intent_labels holds ids outside \[0, 3\)"):
        model(**batch, intent_labels=torch.tensor([7]))
