"""The packaged all-MiniLM-L6-v2 backbone: loads offline and, before fine-tuning, embeds like sentence-transformers."""

from __future__ import annotations

import torch

from conftest import run_without_project


def test_packaged_backbone_embedding_equals_sentence_transformers(tmp_path):
    """Runs offline in a fresh process, so nothing could have been fetched from the Hub."""
    result = run_without_project(
        """
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoTokenizer
        from multitask_bert import MultiTaskBertModel, default_backbone_path

        texts = ["remind me to call Anna at 5pm tomorrow", "set a timer for ten minutes", "hi"]
        path = default_backbone_path()
        model = MultiTaskBertModel.from_backbone(intent_labels=["a", "b"], ner_labels=["O", "B-X", "I-X"]).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        with torch.no_grad():
            ours = model(**tokenizer(texts, padding=True, return_tensors="pt")).sentence_embedding
        reference = SentenceTransformer(path, device="cpu").encode(texts, convert_to_tensor=True)
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
        assert model.config.pooling == "mean" and model.config.normalize_embeddings
        print("max abs diff", float((ours - reference).abs().max()))
        """,
        tmp_path,
        env={"TRANSFORMERS_OFFLINE": "1"},
        block_project=False,
    )
    assert "max abs diff" in result.stdout
    assert "LOAD REPORT" not in result.stderr, "the unused pooler weights should load silently"


def test_from_backbone_keeps_pretrained_encoder_weights():
    from transformers import AutoModel

    from multitask_bert import MultiTaskBertModel, default_backbone_path

    model = MultiTaskBertModel.from_backbone(intent_labels=["a", "b"])
    reference = AutoModel.from_pretrained(default_backbone_path())
    for name, parameter in model.backbone.state_dict().items():
        assert torch.equal(parameter, reference.state_dict()[name]), name
    assert list(model.config.tasks) == ["intent"]
