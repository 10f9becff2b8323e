"""Where experiments live: a local path, a network file system path, or a cloud URI (``s3://``, ``gs://``).

Ray Tune writes trial folders and checkpoints straight to the storage, from every node. rtune's own files
(``settings.json``, ``trials.csv``, ``summary.json``, ``best_model.keras``, the report) are built in a
local directory:

* storage is a path (local disk, NFS, EFS, Lustre, ...): the experiment directory ``<storage>/<name>``
  itself;
* storage is a URI: a local mirror of ``<uri>/<name>`` under ``$RTUNE_CACHE_DIR`` (default
  ``~/.cache/rtune``) that :func:`download` fills with Tune's files (never the checkpoints), and from which
  :func:`upload` copies rtune's files back next to Tune's. Any URI pyarrow understands works
  (``s3://``, ``gs://``, ``file://``); credentials come from the environment as for Ray.

A run on several machines needs storage that every machine reaches: :func:`check_shared` refuses a path
on a machine-local disk when the Ray cluster spans more than one host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from rtune_fashion.errors import ExperimentError

CACHE_DIR_VARIABLE = "RTUNE_CACHE_DIR"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# File system types seen from every machine that mounts them (the same path on each node).
SHARED_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "ceph", "cephfs", "glusterfs", "gpfs",
                      "beegfs", "efs", "9p", "virtiofs", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs",
                      "fuse.mountpoint-s3", "fuse.sshfs", "fuse.glusterfs", "fuse.cephfs"}  # fmt: skip
# Types that live on one machine's disk or memory.
LOCAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "tmpfs", "overlay", "vfat",
                     "exfat", "ntfs", "ramfs", "apfs", "hfs"}  # fmt: skip


def is_uri(storage: str) -> bool:
    """Whether ``storage`` is a URI (``s3://bucket/path``, ``file:///path``) rather than a path."""
    return bool(_URI.match(storage))


def join(base: str, name: str) -> str:
    """``base/name`` for a URI or a path."""
    return f"{base.rstrip('/')}/{name}"


def cache_root() -> Path:
    """rtune's local cache on this machine: ``$RTUNE_CACHE_DIR``, default ``~/.cache/rtune``."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE, "~/.cache/rtune")).expanduser()


def mirror_dir(uri: str) -> Path:
    """The local directory that mirrors an experiment stored at ``uri``."""
    scheme, rest = uri.split("://", 1)
    cache = cache_root()
    parts = [part for part in PurePosixPath(rest).parts if part not in ("/", "..", ".")]
    return (cache / scheme / Path(*parts)).resolve()


def _filesystem(uri: str):
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (pyarrow.ArrowInvalid, OSError) as error:
        raise ExperimentError(
            f"Cannot open the storage {uri} ({error}). Fix: check the URI, that its file system is supported "
            "by pyarrow (s3://, gs://, file://) and the credentials in the environment."
        ) from error


def check_writable(storage: str) -> None:
    """Create the storage location if needed and write a test file there.

    Raises:
        ExperimentError: naming the location and the reason, with the fix.
    """
    try:
        if is_uri(storage):
            fs, path = _filesystem(storage)
            fs.create_dir(path, recursive=True)
            marker = join(path, ".rtune-write-test")
            with fs.open_output_stream(marker) as out:
                out.write(b"ok")
            fs.delete_file(marker)
        else:
            directory = Path(storage).expanduser()
            directory.mkdir(parents=True, exist_ok=True)
            marker = directory / f".rtune-write-test-{os.getpid()}"
            marker.write_text("ok")
            marker.unlink()
    except OSError as error:
        raise ExperimentError(
            f"Cannot write to the storage {storage} ({error}). Fix: give --storage a writable directory, or "
            "a shared file system path / cloud URI (s3://bucket/path) that this machine can write."
        ) from error


MANIFEST_FILE = ".downloaded.json"  # in a mirror: what the last download brought, with each file's size and mtime


def download(uri: str, local: Path) -> Path:
    """Copy an experiment's files from ``uri`` into ``local`` (checkpoints excluded); return ``local``.

    A file is copied again when its size or modification time at the URI changed since the last download
    (``MANIFEST_FILE`` records them), and JSON and CSV files always (Tune rewrites them in place, and some
    stores keep whole seconds only). A file that an earlier download brought and the URI no longer holds is
    deleted (an experiment deleted at the URI and its name reused must not bring back an old ``summary.json``
    or ``best_model.keras``); files written here and not yet uploaded (the driver's model before its upload, a
    report's pictures) were never downloaded, so they stay. A mirror without a manifest (made before it
    existed) counts all its files as downloaded. Each file is written whole (a temporary file renamed), so a
    process reading the mirror while another downloads never sees half a file.
    """
    import pyarrow.fs

    from rtune_fashion.files import write_atomic

    fs, root = _filesystem(uri)
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    except FileNotFoundError:
        infos = []
    before = _downloaded_before(local)
    now: dict[str, list] = {}
    for info in infos:
        if info.type != pyarrow.fs.FileType.File:
            continue
        relative = PurePosixPath(info.path).relative_to(PurePosixPath(root))
        if any(part.startswith("checkpoint_") for part in relative.parts) or relative.name == MANIFEST_FILE:
            continue
        key, stamp = relative.as_posix(), [info.size, info.mtime_ns]
        now[key] = stamp
        target = local / Path(*relative.parts)
        if target.exists() and before.get(key) == stamp and target.suffix not in (".json", ".csv"):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as source:
            write_atomic(target, source.read())
    for key in before.keys() - now.keys():  # gone from the URI since it was downloaded
        gone = local / key
        gone.unlink(missing_ok=True)
        for folder in gone.parents:  # and the folders it leaves empty, up to the mirror
            if folder == local or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
    if now or before:
        local.mkdir(parents=True, exist_ok=True)
        write_atomic(local / MANIFEST_FILE, json.dumps(now))
    return local


def _downloaded_before(local: Path) -> dict[str, list | None]:
    """What the last download brought into ``local`` (relative path -> [size, mtime]); every file there when
    the mirror has no manifest yet."""
    try:
        return json.loads((local / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        if not local.is_dir():
            return {}
        return {p.relative_to(local).as_posix(): None for p in local.rglob("*") if p.is_file()}
    except (OSError, ValueError):
        return {}


def clear_mirror(uri: str) -> None:
    """Empty the local mirror of ``uri``: a new experiment there owns it, and nothing of it exists yet (an old
    experiment of the same name, deleted at the URI, left its files here, uploaded or not)."""
    shutil.rmtree(mirror_dir(uri.rstrip("/")), ignore_errors=True)


def local_copy(location: str) -> Path:
    """The local directory of an experiment given as a path or a URI (downloaded into its mirror first)."""
    if is_uri(location):
        uri = location.rstrip("/")
        return download(uri, mirror_dir(uri))
    return Path(location).expanduser()


def upload(local: Path, uri: str, names: Iterable[str]) -> None:
    """Copy the files (or directories) ``names`` of ``local`` to ``uri``, keeping their relative paths."""
    fs, root = _filesystem(uri)
    for name in names:
        source = local / name
        files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
        for path in files:
            if not path.exists():
                continue
            target = join(root, path.relative_to(local).as_posix())
            fs.create_dir(str(PurePosixPath(target).parent), recursive=True)
            with fs.open_output_stream(target) as out:
                out.write(path.read_bytes())


def filesystem_type(path: Path, mounts: str | None = None) -> str:
    """The file system type of the mount that holds ``path`` (from /proc/mounts); "" when unknown."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    path = Path(path).expanduser().absolute()
    best, kind = -1, ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        if (path == Path(mount_point) or Path(mount_point) in path.parents) and len(mount_point) > best:
            best, kind = len(mount_point), fields[2]
    return kind


def check_shared(storage: str, hosts: int, mounts: str | None = None) -> str | None:
    """Refuse machine-local storage for a cluster of several hosts; a warning when it cannot tell.

    Returns:
        None when the storage is fine (a URI, a shared file system, or a single host); a warning when the
        path's file system type is unknown.

    Raises:
        ExperimentError: the cluster has several hosts and the storage path is on a local disk.
    """
    if is_uri(storage) or hosts <= 1:
        return None
    kind = filesystem_type(Path(storage), mounts)
    if kind in SHARED_FILESYSTEMS:
        return None
    fix = ("Fix: --storage on a file system mounted at the same path on every node (NFS, EFS, Lustre, ...) "
           "or a bucket URI such as s3://my-bucket/rtune.")  # fmt: skip
    if kind in LOCAL_FILESYSTEMS:
        raise ExperimentError(
            f"--storage {storage} is on this machine's own disk ({kind}), but the Ray cluster spans {hosts} "
            "machines (those alive and those its autoscaler may start): checkpoints written on one node could "
            "not be read on another, so a trial could not "
            f"move, and results would be scattered. {fix}"
        )
    return (f"Warning: cannot tell whether --storage {storage} (file system {kind or 'unknown'}) is shared "
            f"by the {hosts} machines of this Ray cluster; if it is not, trials cannot move between nodes. {fix}")
