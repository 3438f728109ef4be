"""The byte scan a purge ends with: no file under an embedded store holds any purged id.

Every file is searched raw, and column data (``.bin``) is searched again inside its
compressed blocks (ClickHouse's framing: LZ4 and uncompressed blocks are decoded; numeric-only
codec chains cannot hold a string; anything else is reported as opaque, i.e. not proven).

One scan serves a whole batch of purges: :func:`scan_directory` reports, per id, the files
holding it. A handful of ids is searched with ``bytes.find`` (fast C, ~10 GB/s each); past
:data:`FIND_LIMIT` ids one Aho-Corasick pass over each chunk finds all of them at once, at a
speed that does not depend on how many there are.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LZ4, _NONE, _MULTIPLE = 0x82, 0x02, 0x91
# Delta, T64, DoubleDelta, Gorilla, FPC, GCD
_NUMERIC_CODECS = {0x92, 0x93, 0x94, 0x95, 0x98, 0x9A}
_METHODS = {_NONE, _LZ4, *range(0x90, 0x9B)}
_CHUNK = 8 * 1024 * 1024
#: Up to this many ids, one ``bytes.find`` per id beats a multi-pattern automaton.
FIND_LIMIT = 48

Matcher = Callable[[bytes], set[str]]


@dataclass(slots=True)
class ScanReport:
    """What the byte scan of the store directory covered and found."""

    files: int = 0
    bytes_raw: int = 0
    bytes_decompressed: int = 0
    blocks_decoded: int = 0
    blocks_numeric: int = 0  # numeric-only codec chains: no string can be inside
    blocks_opaque: int = 0  # codecs the scan cannot decode (ZSTD...): not proven
    matches: list[str] = field(default_factory=list)  # files holding any id
    found: dict[str, list[str]] = field(default_factory=dict)  # id -> files holding it
    opaque_files: list[str] = field(default_factory=list)

    def matches_for(self, ids: Iterable[str]) -> list[str]:
        """The files holding any of ``ids``."""
        return sorted({f for i in ids for f in self.found.get(i, ())})

    def as_dict(self, ids: Iterable[str] | None = None) -> dict[str, Any]:
        """The report, with ``matches`` limited to ``ids`` when given (one person's part of
        a batch's scan)."""
        matches = self.matches if ids is None else self.matches_for(ids)
        return {"files": self.files, "bytes_raw": self.bytes_raw,
                "bytes_decompressed": self.bytes_decompressed,
                "blocks_decoded": self.blocks_decoded, "blocks_numeric": self.blocks_numeric,
                "blocks_opaque": self.blocks_opaque,
                "opaque_files": self.opaque_files[:20], "matches": matches}


def _matcher(ids: Sequence[str]) -> Matcher:
    """A function giving the ids found in a byte string."""
    needles = [(i, i.encode("utf-8")) for i in ids]
    if len(needles) <= FIND_LIMIT:
        def find(window: bytes) -> set[str]:
            return {i for i, n in needles if n in window}
        return find
    import ahocorasick  # the collector extra's dependency; only batches of purges need it

    automaton = ahocorasick.Automaton()
    for i, _ in needles:
        automaton.add_word(i, i)
    automaton.make_automaton()

    def scan(window: bytes) -> set[str]:
        # latin-1 maps each byte to one character, so an ASCII id matches as itself.
        return {value for _, value in automaton.iter(window.decode("latin-1"))}
    return scan


def _search(stream: Iterable[bytes], match: Matcher, longest: int) -> set[str]:
    """Ids found in a stream of chunks; keeps an overlap so an id split across chunks is
    found."""
    keep = longest - 1
    tail = b""
    found: set[str] = set()
    for chunk in stream:
        window = tail + chunk
        found |= match(window)
        tail = window[-keep:] if keep else b""
    return found


def _raw_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _decompressed_blocks(data: bytes, report: ScanReport) -> Iterator[bytes] | None:
    """ClickHouse's compressed-file framing, or None if ``data`` is not such a file.

    Each block: 16-byte checksum, method byte, UInt32 compressed size (with the 9-byte header),
    UInt32 decompressed size, payload.
    """
    pos, blocks = 0, []
    while pos < len(data):
        if pos + 25 > len(data):
            return None
        method, csize, dsize = struct.unpack_from("<BII", data, pos + 16)
        if csize < 9 or pos + 16 + csize > len(data) or method not in _METHODS:
            return None
        blocks.append((method, pos + 25, pos + 16 + csize, dsize))
        pos += 16 + csize

    def gen() -> Iterator[bytes]:
        import lz4.block  # type: ignore[import-untyped]  # clickhouse-connect's dependency

        for method, start, end, dsize in blocks:
            payload = data[start:end]
            if method == _NONE:
                out = payload
            elif method == _LZ4:
                try:
                    out = lz4.block.decompress(payload, uncompressed_size=dsize)
                except Exception:
                    report.blocks_opaque += 1
                    continue
            elif method == _MULTIPLE and payload and _NUMERIC_CODECS & set(
                    payload[1:1 + payload[0]]):
                # A chain with Delta, T64, DoubleDelta, Gorilla, FPC or GCD: ClickHouse allows
                # these on numeric columns only (e.g. _block_number), which cannot hold an id.
                report.blocks_numeric += 1
                continue
            else:
                report.blocks_opaque += 1
                continue
            report.blocks_decoded += 1
            report.bytes_decompressed += len(out)
            yield out

    return gen()


def _files(root: Path) -> list[Path]:
    """Every file under ``root``. The store keeps writing while it is walked (inserts and
    merges make and remove ``tmp_*`` directories), so a directory that vanishes mid-walk is
    skipped, not an error: what is gone holds nothing."""
    found: list[Path] = []
    for folder, _, names in os.walk(root, onerror=lambda error: None):
        found += (Path(folder) / name for name in names)
    return sorted(found)


def scan_directory(root: Path, ids: Iterable[str]) -> ScanReport:
    """Look for each id in every file under ``root``: raw bytes, and inside compressed blocks."""
    wanted = sorted({i for i in ids if i})
    report = ScanReport()
    if not wanted or not root.exists():
        return report
    match = _matcher(wanted)
    longest = max(len(i.encode("utf-8")) for i in wanted)
    for path in _files(root):
        try:
            size = path.stat().st_size
            report.files += 1
            report.bytes_raw += size
            found = _search(_raw_chunks(path), match, longest)
            # Column data lives in .bin files (marks files hold offsets only).
            if path.suffix == ".bin":
                opaque = report.blocks_opaque
                blocks = _decompressed_blocks(path.read_bytes(), report)
                if blocks is None and size:  # not the framing we know: unproven
                    report.blocks_opaque += 1
                if blocks is not None:
                    found |= _search(blocks, match, longest)
                if report.blocks_opaque > opaque:
                    report.opaque_files.append(str(path.relative_to(root)))
        except (FileNotFoundError, NotADirectoryError):  # removed while we walked: nothing left
            continue
        if found:
            name = str(path.relative_to(root))
            report.matches.append(name)
            for i in found:
                report.found.setdefault(i, []).append(name)
    return report
