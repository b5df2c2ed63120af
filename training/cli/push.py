"""`multitask-bert push`: upload a saved model folder to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

from ...hub_card.push import push_to_hub
from .parsing import CommandParser


def main(argv: list[str]) -> int:
    """`multitask-bert push MODEL_DIR REPO_ID [--private] [--revision BRANCH] [--commit-message TEXT]
    [--include-logs true]`."""
    parser = CommandParser(
        prog="multitask-bert push",
        description="Upload a saved model folder to the Hugging Face Hub, where it loads with "
        "`AutoModel.from_pretrained(REPO_ID, trust_remote_code=True)`. Log in first (`hf auth login`) or set HF_TOKEN.",
    )
    parser.add_argument(
        "model_dir", type=Path, help="a folder written by `save_pretrained` (or `multitask-bert train`)"
    )
    parser.add_argument("repo_id", help="`namespace/name`, or `name` for your own namespace")
    parser.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its setting)"
    )
    parser.add_argument("--revision", metavar="BRANCH", help="push to this branch (created from main if missing)")
    parser.add_argument("--commit-message", help="summary of the commit")
    parser.add_switch(
        "--include-logs",
        help="also upload the TensorBoard logs that `train` writes to MODEL_DIR/runs/ (shown on the Hub as training "
        "metrics; default: false)",
    )
    args = parser.parse_args(argv)
    commit = push_to_hub(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        include_logs=args.include_logs,
    )
    print(f"Pushed {args.model_dir} to {commit.repo_url} ({commit.commit_url})")
    return 0
