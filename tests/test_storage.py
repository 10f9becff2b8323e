"""Storage locations: paths and URIs, the local mirror of a URI, and the shared-storage check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtune_fashion import storage
from rtune_fashion.errors import ExperimentError

MOUNTS = """\
/dev/nvme0n1p1 / ext4 rw,relatime 0 0
fs-1234.efs.us-west-2.amazonaws.com:/ /mnt/shared nfs4 rw,vers=4.1 0 0
tmpfs /mnt/shared/scratch tmpfs rw 0 0
weird /mnt/odd fuse.somefs rw 0 0
"""


def test_uris_and_paths_are_told_apart() -> None:
    assert storage.is_uri("s3://bucket/rtune") and storage.is_uri("gs://b/x") and storage.is_uri("file:///tmp/x")
    assert not storage.is_uri("/tmp/results") and not storage.is_uri("results") and not storage.is_uri("C:/x")
    assert storage.join("s3://bucket/rtune/", "exp") == "s3://bucket/rtune/exp"


def test_a_uri_mirrors_into_the_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(storage.CACHE_DIR_VARIABLE, str(tmp_path))
    assert storage.mirror_dir("s3://bucket/a/../exp") == tmp_path / "s3" / "bucket" / "a" / "exp"


def test_filesystem_type_is_the_longest_mount_prefix() -> None:
    assert storage.filesystem_type(Path("/home/me/results"), MOUNTS) == "ext4"
    assert storage.filesystem_type(Path("/mnt/shared/results"), MOUNTS) == "nfs4"
    assert storage.filesystem_type(Path("/mnt/shared/scratch/x"), MOUNTS) == "tmpfs"


def test_shared_storage_check() -> None:
    assert storage.check_shared("s3://bucket/rtune", hosts=3, mounts=MOUNTS) is None
    assert storage.check_shared("/home/me/results", hosts=1, mounts=MOUNTS) is None  # one machine: fine
    assert storage.check_shared("/mnt/shared/results", hosts=3, mounts=MOUNTS) is None  # NFS
    with pytest.raises(ExperimentError, match=r"on this machine's own disk \(ext4\), but the Ray cluster spans 3 "
                       r"machines.*Fix: --storage on a file system mounted at the same path"):  # fmt: skip
        storage.check_shared("/home/me/results", hosts=3, mounts=MOUNTS)
    with pytest.raises(ExperimentError, match=r"\(tmpfs\)"):
        storage.check_shared("/mnt/shared/scratch/r", hosts=2, mounts=MOUNTS)
    warning = storage.check_shared("/mnt/odd/results", hosts=2, mounts=MOUNTS)
    assert warning and "cannot tell whether --storage /mnt/odd/results (file system fuse.somefs)" in warning


def test_unwritable_storage_is_refused_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ExperimentError, match=r"Cannot write to the storage .*a_file/results.*Fix: give --storage"):
        storage.check_writable(str(blocker / "results"))
    with pytest.raises(ExperimentError, match=r"Cannot write to the storage file://.*Fix"):
        storage.check_writable(f"file://{blocker}/results")
    with pytest.raises(ExperimentError, match=r"Cannot open the storage nosuchscheme://x"):
        storage.check_writable("nosuchscheme://x")


def test_download_skips_checkpoints_and_upload_puts_files_back(tmp_path: Path) -> None:
    remote = tmp_path / "remote" / "exp"
    (remote / "trial_1" / "checkpoint_000000").mkdir(parents=True)
    (remote / "trial_1" / "checkpoint_000000" / "model.keras").write_bytes(b"big")
    (remote / "trial_1" / "result.json").write_text(json.dumps({"epoch": 1}) + "\n")
    (remote / "settings.json").write_text("{}")
    local = storage.download(f"file://{remote}", tmp_path / "mirror")
    assert (local / "trial_1" / "result.json").read_text().startswith('{"epoch": 1}')
    assert (local / "settings.json").exists() and not (local / "trial_1" / "checkpoint_000000").exists()

    (local / "report_files").mkdir()
    (local / "report_files" / "a.png").write_bytes(b"png")
    (local / "report.md").write_text("# report")
    storage.upload(local, f"file://{remote}", ["report.md", "report_files"])
    assert (remote / "report.md").read_text() == "# report" and (remote / "report_files" / "a.png").exists()


def test_the_mirror_drops_what_the_uri_no_longer_holds_and_keeps_what_was_written_here(tmp_path: Path) -> None:
    """An experiment deleted at the URI and its name reused: the old summary and model must not come back; a
    changed file of the same size is copied again; a file written here and not yet uploaded stays."""
    remote = tmp_path / "remote" / "exp"
    (remote / "trial_1").mkdir(parents=True)
    (remote / "trial_1" / "result.json").write_text("{}\n")
    (remote / "summary.json").write_text('{"test_accuracy": 0.9}')
    (remote / "best_model.keras").write_bytes(b"old model")
    local = storage.download(f"file://{remote}", tmp_path / "mirror")
    assert (local / "summary.json").exists() and (local / "best_model.keras").read_bytes() == b"old model"

    (local / "report.md").write_text("# written here, not uploaded yet")
    for path in (remote / "summary.json", remote / "trial_1" / "result.json"):
        path.unlink()
    (remote / "best_model.keras").write_bytes(b"new model")  # the same size, another model
    storage.download(f"file://{remote}", local)
    assert not (local / "summary.json").exists() and not (local / "trial_1").exists()  # its folder too
    assert (local / "best_model.keras").read_bytes() == b"new model"
    assert (local / "report.md").exists()

    import shutil

    shutil.rmtree(remote)  # nothing at the URI at all: what came from it goes
    storage.download(f"file://{remote}", local)
    assert not (local / "best_model.keras").exists() and (local / "report.md").exists()


def test_a_mirror_made_before_the_manifest_drops_what_the_uri_no_longer_holds(tmp_path: Path) -> None:
    remote = tmp_path / "remote" / "exp"
    remote.mkdir(parents=True)
    (remote / "settings.json").write_text("{}")
    local = tmp_path / "mirror"
    local.mkdir()
    (local / "summary.json").write_text('{"old": true}')  # from an experiment since deleted at the URI
    storage.download(f"file://{remote}", local)
    assert sorted(p.name for p in local.iterdir() if p.name != storage.MANIFEST_FILE) == ["settings.json"]


def test_a_new_experiment_at_a_uri_starts_from_an_empty_mirror(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(storage.CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    uri = f"file://{tmp_path / 'bucket' / 'exp'}"
    mirror = storage.mirror_dir(uri)
    mirror.mkdir(parents=True)
    (mirror / "summary.json").write_text("{}")  # an old experiment's, uploaded and since deleted at the URI
    storage.clear_mirror(uri)
    assert not mirror.exists()
