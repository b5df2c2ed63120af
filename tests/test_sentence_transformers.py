"""A saved model folder loads as a `SentenceTransformer` (remote code, no modules.json needed) whose `encode()` gives
exactly the model's `sentence_embedding`, in a process that cannot import this project."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from conftest import run_without_project, tiny_model

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
