"""Draw benchmarks/results/throughput.png (utterances/s vs batch size) from benchmarks/results/speed.json."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    speed = json.loads((RESULTS / "speed.json").read_text())
    throughput = speed["utterances_per_second_by_batch_size"]
    sizes = sorted(throughput, key=int)
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot([int(size) for size in sizes], [throughput[size] for size in sizes], marker="o")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("batch size")
    axis.set_ylabel("utterances / second")
    axis.set_title(f"Joint model (intent + entities + embedding)\n{speed['machine']}", fontsize=9)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(RESULTS / "throughput.png", dpi=120)
    print(f"wrote {RESULTS / 'throughput.png'}")


if __name__ == "__main__":
    main()
