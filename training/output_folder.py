"""The folder `multitask-bert train` writes: refused when it already holds files, checkpoints in a subfolder that goes
at the end, and the usual file permissions."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHECKPOINTS_DIR = "checkpoints"


def check_output_dir(output_dir: str | Path, overwrite: bool, resuming: bool) -> None:
    """Raise a `ValueError` naming the folder and the flags that allow it if `output_dir` already holds files
    (resuming a run writes into its own folder, so it is allowed)."""
    output_dir = Path(output_dir)
    if output_dir.is_file():
        raise ValueError(f"Output folder {output_dir} is a file.")
    if overwrite or resuming or not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    raise ValueError(
        f"Output folder {output_dir} is not empty. Pass --overwrite-output-dir to write into it anyway, or "
        f"--resume-from-checkpoint {output_dir / CHECKPOINTS_DIR}/checkpoint-N to continue an interrupted run."
    )


def checkpoints_dir(output_dir: str | Path) -> Path:
    """Where the Trainer writes its checkpoints: a subfolder, so the model folder itself stays ready to publish."""
    return Path(output_dir) / CHECKPOINTS_DIR


def remove_checkpoints(output_dir: str | Path) -> None:
    """Delete the checkpoints of a finished run (the model is saved next to them)."""
    shutil.rmtree(checkpoints_dir(output_dir), ignore_errors=True)


def apply_umask(folder: str | Path) -> None:
    """Give every file under `folder` the permissions a plain `open()` gives (read for all under the usual umask
    022): some writers create files 0600 through temporary files."""
    umask = os.umask(0)
    os.umask(umask)
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)
