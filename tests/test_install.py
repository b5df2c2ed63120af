"""A normal (non-editable) install puts everything under `multitask_bert` and ships the package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import REPO_ROOT


def test_wheel_installs_under_one_namespace(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("multitask_bert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"multitask_bert"}, top_level
    assert "multitask_bert/modeling/modeling_multitask_bert.py" in names
    assert not any(name.startswith("multitask_bert/tests") for name in names)
    embedded = {f"multitask_bert/training/embedded_data/{split}.jsonl" for split in ("train", "validation", "test")}
    assert embedded | {"multitask_bert/training/data/jsonl.py"} <= set(names)
    assert not any("generate_embedded_data" in name for name in names)  # a repository script, not installed

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        f"import sys; sys.path.insert(0, {str(target)!r}); "
        "import multitask_bert.modeling as m, multitask_bert.training as t, multitask_bert.hub_card as h; "
        "print(m.__file__); print(t.__file__); print(h.__file__)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    for path in result.stdout.split():
        assert path.startswith(str(target)), path


def test_editable_install_maps_the_folders_of_this_checkout():
    import multitask_bert.modeling
    import multitask_bert.training

    assert multitask_bert.modeling.__file__.startswith(str(REPO_ROOT / "modeling"))
    assert multitask_bert.training.__file__.startswith(str(REPO_ROOT / "training"))


def test_console_script_reports_version():
    result = subprocess.run(["multitask-bert", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip().startswith("multitask-bert ")
