"""Small file helpers shared by the modules that write experiment outputs."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from rtune_fashion.errors import DataError


def keras_home() -> Path:
    """Keras' own folder (its datasets cache and keras.json): ``KERAS_HOME``, else ``~/.keras``. (Keras itself
    falls back to ``/tmp/.keras`` when ``~`` is not writable; rtune does not.)"""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename it.

    A reader (or a crash) never sees a half-written file: it sees the old content or the new one.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)



def replace_section(doc: Path, key: str, title: str, body: str, *, new_file: str) -> None:
    """Write ``## title`` + ``body`` as the section ``key`` of a markdown document, keeping everything else.

    A section lives between ``<!-- generated:key -->`` and ``<!-- /generated:key -->``: it is replaced in place
    when present, else appended; a missing document starts as ``new_file``. Written atomically.
    """
    start, end = f"<!-- generated:{key} -->", f"<!-- /generated:{key} -->"
    block = f"{start}\n## {title}\n\n{body}\n{end}"
    text = doc.read_text() if doc.exists() else new_file
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(doc, text)


def download_verified(url: str, final: Path, verify: Callable[[Path], None], fix: str) -> Path:
    """Download ``url`` into a temporary file beside ``final``; ``verify(tmp)`` it, then rename it to ``final``.

    An interrupted, failed or invalid download never stays: only a verified file gets the final name.

    Raises:
        DataError: the download failed (``fix`` says what to do), or ``verify`` raised DataError.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as error:
            raise DataError(f"Downloading {url} failed ({error}). Fix: {fix}") from error
        try:
            verify(tmp)
        except DataError as error:
            raise DataError(f"The download of {url} is not valid: {error}") from error
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    return final
