"""The loss curves of a training run, drawn for the model card."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def save_loss_plot(log_history: list[dict], path: str | Path) -> bool:
    """
    Plot the joint training loss, each task's training loss (`loss_<task>`, as MultiTaskTrainer logs them) and the
    validation loss per step; returns False, writing nothing, when no loss was logged.
    """
    keys = dict.fromkeys(
        key for entry in log_history for key in entry if key in ("loss", "eval_loss") or key.startswith("loss_")
    )
    curves = {
        key: [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry] for key in keys
    }
    curves = {key: points for key, points in curves.items() if points}
    if not curves:
        return False
    styles = {"loss": {"label": "training loss (joint)"}, "eval_loss": {"marker": "o", "label": "validation loss"}}
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    for key, points in curves.items():
        style = styles.get(key, {"linestyle": "--", "label": f"training loss: {key.removeprefix('loss_')}"})
        axes.plot(*zip(*points, strict=True), **style)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Loss during training")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    return True
