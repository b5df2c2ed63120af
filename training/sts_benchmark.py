"""STS Benchmark: how well a model's sentence embedding keeps general similarity, scored by sentence-transformers."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from transformers.utils.logging import is_progress_bar_enabled

STS_FILE = "test.tsv"
COLUMNS = ("genre", "source", "score", "sentence1", "sentence2")


@dataclass
class StsPairs:
    """Sentence pairs with their human similarity scores (0 to 5), and the file they came from."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    path: Path


def read_sts_benchmark(path: str | Path) -> StsPairs:
    """The pairs of an STS Benchmark file (or of `test.tsv` in a folder): `genre source score sentence1 sentence2`."""
    path = Path(path)
    file = path / STS_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no STS Benchmark file there (expected a folder with {STS_FILE}, or the file)."
        )
    pairs = StsPairs([], [], [], file)
    with file.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{file}, line 1: expected the header {' '.join(COLUMNS)!r}, got {header}.")
        for line, row in enumerate(rows, start=2):
            if len(row) != len(COLUMNS):
                raise ValueError(f"{file}, line {line}: expected {len(COLUMNS)} tab-separated fields, got {len(row)}.")
            try:
                score = float(row[2])
            except ValueError:
                raise ValueError(f"{file}, line {line}: the score {row[2]!r} is not a number.") from None
            pairs.sentences1.append(row[3])
            pairs.sentences2.append(row[4])
            pairs.scores.append(score)
    if not pairs.scores:
        raise ValueError(f"{file}: no sentence pairs.")
    return pairs


def sts_benchmark_spearman(
    model_name_or_path: str | Path, sts: str | Path | StsPairs, batch_size: int = 64, show_progress: bool = True
) -> float:
    """
    Spearman correlation between the cosine of the two sentences' embeddings and the human scores, computed by
    sentence-transformers' `EmbeddingSimilarityEvaluator` on `SentenceTransformer(model_name_or_path)` (a saved
    multitask-bert folder loads through its remote code); `sts` is a path for `read_sts_benchmark` or pairs it read.
    Its encoding progress bars show unless `show_progress` is false or transformers' progress bars are off
    (`transformers.utils.logging.disable_progress_bar()`, `HF_HUB_DISABLE_PROGRESS_BARS=1`).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    pairs = sts if isinstance(sts, StsPairs) else read_sts_benchmark(sts)
    model = SentenceTransformer(str(model_name_or_path), trust_remote_code=True)
    evaluator = EmbeddingSimilarityEvaluator(
        pairs.sentences1,
        pairs.sentences2,
        pairs.scores,
        batch_size=batch_size,
        main_similarity="cosine",
        name="sts-b",
        write_csv=False,
        show_progress_bar=show_progress and is_progress_bar_enabled(),
    )
    return float(evaluator(model)["sts-b_spearman_cosine"])
