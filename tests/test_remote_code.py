"""A saved model is self-contained: it loads as Hub remote code where this project cannot be imported."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from conftest import run_without_project, tiny_model


def test_saved_model_loads_and_matches_without_project(tmp_path, tokenizer):
    model = tiny_model(use_crf=True)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    files = {path.name for path in model_dir.iterdir()}
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert {"modeling_multitask_bert.py", "configuration_multitask_bert.py"} <= files
    assert json.loads((model_dir / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_multitask_bert.MultiTaskBertConfig",
        "AutoModel": "modeling_multitask_bert.MultiTaskBertModel",
        "AutoModelForSequenceClassification": "modeling_multitask_bert.MultiTaskBertForSequenceClassification",
        "AutoModelForTokenClassification": "modeling_multitask_bert.MultiTaskBertForTokenClassification",
    }

    texts = ["wake me at 7", "cancel lunch with Anna on friday"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    save_file(
        {
            "intent": expected.logits["intent"],
            "ner": expected.logits["ner"].contiguous(),
            "embedding": expected.sentence_embedding,
        },
        str(tmp_path / "expected.safetensors"),
    )

    result = run_without_project(
        f"""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        try:
            import multitask_bert
            raise SystemExit("multitask_bert must not be importable here")
        except ImportError:
            pass
        model = AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(model_dir)!r})
        assert not type(model).__module__.startswith("multitask_bert"), type(model).__module__
        batch = tokenizer({texts!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            output = model(**batch)
        expected = load_file({str(tmp_path / "expected.safetensors")!r})
        torch.testing.assert_close(output.logits["intent"], expected["intent"], atol=1e-6, rtol=0)
        torch.testing.assert_close(output.logits["ner"], expected["ner"], atol=1e-6, rtol=0)
        torch.testing.assert_close(output.sentence_embedding, expected["embedding"], atol=1e-6, rtol=0)
        print(type(model).__name__, type(model).__module__)
        """,
        tmp_path,
    )
    class_name, module = result.stdout.split()[-2:]
    assert class_name == "MultiTaskBertModel"
    assert module.startswith("transformers_modules")
