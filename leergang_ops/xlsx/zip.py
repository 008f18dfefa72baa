"""The zip: members copied with their compressed bytes, the patched sheet as a deflated spool."""

from __future__ import annotations

import copy
import os
import queue
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from leergang_ops.xlsx.errors import DamagedWorkbook

_CHUNK = 1 << 20
_SPOOL = 8 << 20  # the compressed patched sheet stays in memory up to this size, then on disk
# Excel stores its members with "super fast" deflate; level 1 keeps a 50,000-row patch ~1 s.
_COMPRESS_LEVEL = 1


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_DATA_DESCRIPTOR = 0x08


class _DeflatedSpool:
    """A write-only file that deflates (and checksums) what it gets, in a worker thread.

    zlib releases the GIL, so compressing overlaps with patching the next rows; the
    compressed result (a few MiB for 50,000 rows) stays in memory or spills to disk.
    """

    def __init__(self, compress: bool = True) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 (closed in __exit__)
        self.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.crc = 0
        self.size = 0
        self._deflate = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, -15) if compress else None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="deflate", daemon=True)
        self._thread.start()

    def __enter__(self) -> _DeflatedSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self.spool.close()

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        if data:
            self._queue.put(data)
        return len(data)

    def finish(self) -> None:
        """Wait until everything written is compressed; re-raise the worker's error."""
        self._stop()
        if self._error is not None:
            raise self._error
        self.spool.seek(0)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                self.crc = zlib.crc32(data, self.crc)
                self.size += len(data)
                self.spool.write(self._deflate.compress(data) if self._deflate else data)
            if self._deflate:
                self.spool.write(self._deflate.flush())
        except BaseException as err:  # handed to the writing thread
            self._error = err
            while self._queue.get() is not None:  # drain, so the writer never blocks
                pass


def _write_package(zin: zipfile.ZipFile, src: Path, dst: Path, sheet: str,
                   sheet_data: _DeflatedSpool | None,
                   replaced: Mapping[str, bytes | None]) -> None:
    """Write dst: every member in the original order, changed ones new, others raw-copied."""
    with open(src, "rb") as raw, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name = info.filename
            if name == sheet and sheet_data is not None:
                _write_deflated(zout, info, sheet_data)
            elif name in replaced:
                data = replaced[name]
                if data is not None:
                    _write_member(zout, info, data)
            else:
                _copy_raw(raw, zout, info)
        zout.comment = zin.comment


def _new_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A ZipInfo for a changed member: the original's name, date and attributes."""
    new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    new.compress_type = info.compress_type if info.compress_type in (
        zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) else zipfile.ZIP_DEFLATED
    new.create_system = info.create_system
    new.external_attr = info.external_attr
    new.comment = info.comment
    return new


def _write_deflated(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: _DeflatedSpool) -> None:
    """Write a member whose bytes are already compressed and checksummed."""
    new = _new_info(info)
    new.compress_type = data.compress_type
    new.CRC, new.file_size = data.crc, data.size
    new.compress_size = data.spool.seek(0, os.SEEK_END)
    data.spool.seek(0)
    _append_raw(zout, new, data.spool, new.compress_size)


def _write_member(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> None:
    """Write a changed (small) member under the original's name, date and attributes."""
    new = _new_info(info)
    # zout.open() takes the level from the ZipInfo; the attribute is public from Python 3.13.
    setattr(new, "compress_level" if hasattr(new, "compress_level") else "_compresslevel",
            _COMPRESS_LEVEL)
    with zout.open(new, "w") as out:
        out.write(data)


def _copy_raw(raw: IO[bytes], zout: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Copy a member's compressed bytes unchanged, with a fresh local header."""
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise DamagedWorkbook(f"Onderdeel {info.filename} van de werkmap is beschadigd.")
    fields = _LOCAL_HEADER.unpack(header)
    raw.seek(fields[9] + fields[10], os.SEEK_CUR)  # file name and extra field
    out = copy.copy(info)
    out.flag_bits &= ~_DATA_DESCRIPTOR  # sizes and CRC go into the local header instead
    _append_raw(zout, out, raw, info.compress_size)


def _append_raw(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: IO[bytes],
                size: int) -> None:
    """Append a member from `size` compressed bytes; zipfile writes the central directory."""
    fp = zout.fp
    assert fp is not None
    info.header_offset = fp.tell()
    fp.write(info.FileHeader())
    remaining = size
    while remaining:
        chunk = data.read(min(remaining, _CHUNK))
        if not chunk:
            raise DamagedWorkbook(f"Onderdeel {info.filename} van de werkmap is afgebroken.")
        fp.write(chunk)
        remaining -= len(chunk)
    zout.filelist.append(info)
    zout.NameToInfo[info.filename] = info
    zout.start_dir = fp.tell()
