"""A saved model folder loads as a `SentenceTransformer` (remote code) whose `encode()` gives exactly the model's
`sentence_embedding`, in a process that cannot import this project.

sentence-transformers' own checks, ported to a saved tiny model: `encode` equal across batch sizes and to the model's
`sentence_embedding`, numpy and tensor outputs, `normalize_embeddings`, quantised `precision` values (int8, binary,
ubinary), `similarity` and `similarity_pairwise`, `save` then reload, `get_sentence_embedding_dimension`, and
`max_seq_length` equal to the backbone's sentence-transformers model's, with long texts truncated as it truncates
them (for both layouts sentence-transformers writes: the length in `sentence_bert_config.json`, as in the packaged
all-MiniLM-L6-v2, or in the tokenizer config, as newer versions write it), never beyond the encoder's positions.
Left out: training with sentence-transformers losses (the model's own Trainer trains the embedding), ONNX/OpenVINO
backends (the project's ONNX export has its own tests), and multi-process encoding (one CPU process here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import RobertaConfig

from conftest import INTENTS, NER_TAGS, long_text, run_without_project, tiny_encoder_config, tiny_model
from multitask_bert import MultiTaskBertConfig, MultiTaskBertModel, default_backbone_path

TEXTS = ["wake me at 7", "cancel lunch with Anna on friday", "hi", "Zürich café 🎉 東京", ""]
SETTINGS = {
    "mean_normalized": {},
    "cls_raw": {"pooling": "cls", "normalize_embeddings": False},
    "max_crf": {"pooling": "max", "use_crf": True},
}


def test_saved_models_encode_like_the_model(tmp_path, tokenizer):
    expected = {}
    for name, settings in SETTINGS.items():
        model = tiny_model(**settings)
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        with torch.no_grad():
            batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
            expected[name] = model(**batch).sentence_embedding.contiguous()
    save_file(expected, str(tmp_path / "expected.safetensors"))

    result = run_without_project(
        f"""
        import json
        import torch
        from safetensors.torch import load_file
        from sentence_transformers import SentenceTransformer

        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        found = {{}}
        for name in {list(SETTINGS)!r}:
            encoder = SentenceTransformer({str(tmp_path)!r} + "/" + name, trust_remote_code=True, device="cpu")
            embeddings = encoder.encode({TEXTS!r}, convert_to_tensor=True, batch_size=2)
            torch.testing.assert_close(embeddings, expected[name], atol=1e-5, rtol=0)
            found[name] = {{
                "dimension": encoder.get_embedding_dimension(),
                "module": type(encoder[0].model).__module__,
                "similarity": encoder.similarity(embeddings[:1], embeddings[1:2]).item(),
            }}
        print("RESULT", json.dumps(found))
        """,
        tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    for name, embeddings in expected.items():
        assert found[name]["dimension"] == embeddings.shape[1]
        assert found[name]["module"].startswith("transformers_modules")
        cosine = torch.nn.functional.cosine_similarity(embeddings[:1], embeddings[1:2]).item()
        assert found[name]["similarity"] == pytest.approx(cosine, abs=1e-5)
    assert not torch.allclose(expected["cls_raw"].norm(dim=1), torch.ones(len(TEXTS)))


def sentence_transformers_backbone(path: Path, encoder_dir: Path, max_seq_length: int, legacy: bool) -> Path:
    """
    A sentence-transformers model (mean pooling, normalised) of a saved encoder. `legacy` gives the layout of older
    sentence-transformers versions, the packaged all-MiniLM-L6-v2's: `max_seq_length` in `sentence_bert_config.json`
    and a tokenizer that allows 512 tokens; otherwise the length is the tokenizer's, as version 6 saves it.
    """
    transformer = Transformer(str(encoder_dir), max_seq_length=max_seq_length)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    if legacy:
        for name, key, value in (
            ("sentence_bert_config.json", "max_seq_length", max_seq_length),
            ("tokenizer_config.json", "model_max_length", 512),
        ):
            settings = json.loads((path / name).read_text())
            (path / name).write_text(json.dumps({**settings, key: value}))
    return path


def test_sentence_transformers_conventions(tmp_path, tokenizer, tiny_backbone_dir):
    """The checks of sentence-transformers' own tests, run on saved models in a process without this project."""
    labels = {"intent_labels": INTENTS, "ner_labels": NER_TAGS}
    cases = {
        "legacy_layout": (sentence_transformers_backbone(tmp_path / "legacy", tiny_backbone_dir, 48, True), 48),
        "current_layout": (sentence_transformers_backbone(tmp_path / "current", tiny_backbone_dir, 40, False), 40),
        # Tokenizer allows 512 tokens, the encoder 128 positions: no backbone, the encoder's limit.
        "no_backbone_raw": (None, 128),
    }
    texts = ["wake me at 7", "cancel lunch with Anna on friday", "hi", "Zürich café 🎉 東京", long_text(300)]
    expected, spec = {}, {"texts": texts, "cases": {}}
    for name, (backbone, max_seq_length) in cases.items():
        if backbone is None:
            model = tiny_model(normalize_embeddings=False)
        else:
            model = MultiTaskBertModel.from_backbone(str(backbone), **labels).eval()
        assert model.config.max_seq_length == max_seq_length
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)  # allows 512 tokens
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt")
        with torch.no_grad():
            expected[name] = model(**batch).sentence_embedding.contiguous()
        spec["cases"][name] = {
            "model": str(tmp_path / name),
            "backbone": backbone and str(backbone),
            "max_seq_length": max_seq_length,
            "resaved": str(tmp_path / f"{name}_resaved"),
        }
    save_file(expected, str(tmp_path / "expected.safetensors"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))

    run_without_project(
        f"""
        import json
        import numpy as np
        import torch
        from safetensors.torch import load_file
        from sentence_transformers import SentenceTransformer

        spec = json.loads(open({str(tmp_path / "spec.json")!r}).read())
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        texts = spec["texts"]
        close = dict(atol=1e-5, rtol=0)
        for name, case in spec["cases"].items():
            reference = expected[name]
            ours = SentenceTransformer(case["model"], trust_remote_code=True, device="cpu")
            assert ours.max_seq_length == case["max_seq_length"], (name, ours.max_seq_length)
            assert ours.preprocess(texts[-1:])["input_ids"].shape[1] == case["max_seq_length"], name
            assert ours.get_sentence_embedding_dimension() == ours.get_embedding_dimension() == reference.shape[1]
            for batch_size in (1, 2, 8):
                found = ours.encode(texts, batch_size=batch_size, convert_to_tensor=True)
                torch.testing.assert_close(found, reference, **close)
            as_numpy = ours.encode(texts)
            assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32
            unit = torch.nn.functional.normalize(reference, dim=-1)
            normalized = ours.encode(texts, normalize_embeddings=True, convert_to_tensor=True)
            torch.testing.assert_close(normalized, unit, **close)

            signs = np.packbits(reference.numpy() > 0, axis=-1)
            assert np.array_equal(ours.encode(texts, precision="ubinary"), signs)
            binary = (signs.astype(np.int16) - 128).astype(np.int8)
            assert np.array_equal(ours.encode(texts, precision="binary"), binary)
            matrix = reference.numpy()
            starts = matrix.min(axis=0)
            steps = (matrix.max(axis=0) - starts) / 255
            steps[steps == 0] = 1
            buckets = np.clip(np.floor((matrix - starts) / steps), 0, 255) - 128
            found = ours.encode(texts, precision="int8")
            assert found.dtype == np.int8 and np.abs(found.astype(np.int16) - buckets).max() <= 1, name

            assert ours.similarity_fn_name == "cosine"
            torch.testing.assert_close(ours.similarity(reference, reference), unit @ unit.T, **close)
            pairwise = ours.similarity_pairwise(reference[:-1], reference[1:])
            torch.testing.assert_close(pairwise, (unit[:-1] * unit[1:]).sum(-1), **close)

            if case["backbone"]:
                base = SentenceTransformer(case["backbone"], device="cpu")
                assert base.max_seq_length == ours.max_seq_length, name
                long_ids = ours.preprocess(texts[-1:])["input_ids"]
                assert torch.equal(long_ids, base.preprocess(texts[-1:])["input_ids"]), name
                torch.testing.assert_close(base.encode(texts, convert_to_tensor=True), reference, **close)

            ours.save(case["resaved"])
            again = SentenceTransformer(case["resaved"], trust_remote_code=True, device="cpu")
            assert again.max_seq_length == case["max_seq_length"], name
            torch.testing.assert_close(again.encode(texts, convert_to_tensor=True), reference, **close)
        """,
        tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )


def test_saved_folder_tells_sentence_transformers_how_to_embed(tmp_path):
    model = tiny_model(max_seq_length=64)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "modules.json").read_text()) == [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
    ]
    assert json.loads((tmp_path / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 64,
        "modality_config": {"text": {"method": "get_text_features", "method_output_name": "pooler_output"}},
        "module_output_name": "sentence_embedding",
    }


def test_max_seq_length_is_the_packaged_backbones():
    sentence_config = json.loads((Path(default_backbone_path()) / "sentence_bert_config.json").read_text())
    model = MultiTaskBertModel.from_backbone(intent_labels=INTENTS)
    assert model.config.max_seq_length == sentence_config["max_seq_length"] == 256


def test_max_seq_length_never_exceeds_the_encoders_positions():
    positions = tiny_encoder_config().max_position_embeddings
    assert tiny_model(max_seq_length=1000).config.max_seq_length == positions
    # RoBERTa positions start after the padding index: 40 positions read 40 - (1 + 1) tokens.
    encoder = RobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        pad_token_id=1,
    )
    model = MultiTaskBertModel(MultiTaskBertConfig(encoder=encoder)).eval()
    assert model.config.max_seq_length == 38
    with torch.no_grad():
        model(input_ids=torch.full((1, 38), 5))
        with pytest.raises(RuntimeError, match="out of bounds"):
            model(input_ids=torch.full((1, 39), 5))
