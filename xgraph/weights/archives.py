"""Zip archives (`.keras`, torch's `.pt`) opened and read within bounds.

A zip's directory says how many entries it has and how large each is once decompressed;
both are checked before anything is parsed or inflated, and reading stops at the declared
size whatever the data holds, so a small archive cannot expand into gigabytes.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path
from typing import IO

from xgraph.weights.checks import WeightFileError, shown

_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"
_LONGEST_COMMENT = 0xFFFF
# What zipfile raises for a damaged archive or entry (RuntimeError: an "encrypted" entry).
_DAMAGED = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    NotImplementedError,
    EOFError,
    RuntimeError,
    struct.error,
)


def _directory_extent(path: Path) -> tuple[int, int]:
    """The entry count and directory size the archive declares (its zip64 record's, when it
    has one, as zipfile would use them), read from the file's tail alone."""
    size = path.stat().st_size
    with path.open("rb") as file:
        tail_size = min(size, 22 + _LONGEST_COMMENT + 20)
        file.seek(size - tail_size)
        tail = file.read(tail_size)
        at = tail.rfind(_END_OF_DIRECTORY)
        if at < 0 or len(tail) < at + 22:
            raise WeightFileError(
                path, "not a zip archive, or a truncated one (no end-of-directory record)"
            )
        entries, directory_size = struct.unpack_from("<HL", tail, at + 10)
        locator = at - 20
        if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
            (record_offset,) = struct.unpack_from("<Q", tail, locator + 8)
            file.seek(min(record_offset, size))
            record = file.read(56)
            if len(record) == 56 and record[:4] == _ZIP64_END_OF_DIRECTORY:
                entries64, directory_size64 = struct.unpack_from("<QQ", record, 32)
                entries, directory_size = (
                    max(entries, entries64),
                    max(directory_size, directory_size64),
                )
    return entries, directory_size


def open_archive(path: Path, max_entries: int) -> zipfile.ZipFile:
    """The archive, once its directory is known to list at most `max_entries` entries."""
    entries, directory_size = _directory_extent(path)
    # A directory entry takes 46 bytes and a name; 1 KiB each is generous.
    if entries > max_entries or directory_size > 1024 * max_entries:
        raise WeightFileError(
            path,
            f"the archive lists {entries:,} entries in {directory_size:,} bytes; "
            f"a weights archive for this graph has at most {max_entries:,}",
        )
    try:
        return zipfile.ZipFile(path)
    except _DAMAGED as exc:
        raise WeightFileError(path, f"not a readable zip archive: {exc}") from None


def member(
    archive: zipfile.ZipFile, name: str, limit: int, source: Path, what: str
) -> zipfile.ZipInfo:
    """The entry `name`, once its declared decompressed size is known to be at most `limit`."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise WeightFileError(source, f"the archive has no '{shown(name)}' ({what})") from None
    if info.file_size > limit:
        raise WeightFileError(
            source,
            f"'{name}' ({what}) expands to {info.file_size:,} bytes, more than the "
            f"{limit:,} bytes this graph's weights can need",
            hint="is the file from this architecture, with the same --set parameters?",
        )
    return info


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: Path) -> bytes:
    """An entry's bytes; zipfile stops at the declared size and checks the CRC."""
    try:
        with archive.open(info) as file:
            return file.read(info.file_size + 1)
    except _DAMAGED as exc:
        raise WeightFileError(source, f"cannot read '{shown(info.filename)}': {exc}") from None


def copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: IO[bytes], source: Path
) -> None:
    """An entry copied to an open file in bounded pieces, never whole in memory."""
    try:
        with archive.open(info) as file:
            shutil.copyfileobj(file, target, 1 << 20)
    except _DAMAGED as exc:
        raise WeightFileError(source, f"cannot read '{shown(info.filename)}': {exc}") from None
