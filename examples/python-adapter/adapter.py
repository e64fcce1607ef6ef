#!/usr/bin/env python3
"""cowmap example implementation: the protocol of docs/protocol.md behind adapter protocol v1.

A second, independent implementation of the replication protocol (two change
maps, a copy-on-write snapshot, a secondary), file-backed, in Python 3.11 with the
standard library only. It speaks the JSON-lines protocol of docs/adapter.md on
standard input and output, one request per line and one response per line, and
logs to standard error only.

It is meant to be copied. Read it top to bottom:

1. `DurableIo`: every durable I/O call goes through one object, which counts the
   calls (the `io` of each response) and crashes the process at the armed
   failpoint.
2. `Meta`: the metadata record. The phase and the three bit maps (C, X and which
   COW slots are valid) live together in ONE small file that is only ever
   replaced atomically (write a temporary, fsync, rename, fsync the directory).
   So every change of the maps, and in particular the swap, is one durable step.
3. `Volume`: the protocol. Each operation first judges its arguments, then the
   state (docs/protocol.md section 2), and only then does its durable steps, in an order
   chosen so that a crash after ANY of them leaves a state that docs/protocol.md section 5
   and docs/protocol.md allow. Recovery has nothing to repair.
4. `Adapter`: the wire protocol: parsing, field checks, dispatch, responses.

The on-disk layout and the durable order of every operation are in README.md.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import sys
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable

# --------------------------------------------------------------------- constants

PROTOCOL_VERSION = 1
ADAPTER_NAME = "python-example"
ADAPTER_VERSION = "0.1.0"
# Only process crashes are offered: this example does not simulate a power loss
# (which would mean keeping its own record of unsynced writes).
FEATURES = ["failpoint"]

FORMAT_NAME = "cowmap-python-example"
FORMAT_VERSION = 1

# The files of a volume directory (README.md, "On-disk layout").
META_FILE = "meta.json"  # format, geometry, phase, C, X, COW-valid bits, checksum
META_TEMP_FILE = "meta.json.tmp"  # the next metadata, until it is renamed over META_FILE
PRIMARY_FILE = "primary.img"  # P: region r at byte r * regionSize
SECONDARY_FILE = "secondary.img"  # S: the replica (a remote site in real life)
COW_FILE = "cow.img"  # W: slot r holds the preserved copy of region r

IDLE = "idle"
REPLICATING = "replicating"

SECTOR_SIZE = 512
# Bounds of this example, not of the protocol. The whole metadata file is
# rewritten when a bit changes, so it must stay small (3 bytes per region).
# A region must fit in one request line as base64.
MAX_REGIONS = 1 << 16
MAX_REGION_SIZE = 1 << 24
# A line longer than this is rejected unread (a write of MAX_REGION_SIZE bytes is
# about 22.4 MiB of base64).
MAX_LINE_BYTES = 32 << 20

# How the process ends at an armed failpoint: at once, without answering.
FAILPOINT_EXIT_CODE = 86

# Regions named in one error message at most.
REGIONS_LISTED_MAX = 8


def log(message: str) -> None:
    """Logs go to standard error: standard output carries responses only."""
    print(f"[{ADAPTER_NAME}] {message}", file=sys.stderr, flush=True)


class VolumeError(Exception):
    """A rejected or failed request: an error code of docs/protocol.md section 2 and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -------------------------------------------------------------------- durable I/O


class DurableIo:
    """The only way the volume makes a durable I/O call.

    Durable calls are those docs/adapter.md counts: write/pwrite, fsync/fdatasync,
    rename, truncate, unlink, and create (a file opened with O_CREAT, a mkdir).
    Reads, opens of existing files, close and flock are not durable and are not
    counted.

    The failpoint: `arm(k)` makes the process exit right after the k-th durable
    call from now (k = 0: right before the next one), in whichever later request
    that call falls. A process exit loses nothing that reached the operating
    system (docs/protocol.md section 5, rule 4), which is exactly the "process" mode.
    """

    def __init__(self) -> None:
        self.count = 0  # durable calls made for the current request
        self._remaining: int | None = None  # calls left before the crash; None: disarmed

    def start_request(self) -> None:
        self.count = 0

    def arm(self, calls: int | None) -> None:
        self._remaining = calls

    def _crash_if_due(self, after: str) -> None:
        if self._remaining == 0:
            log(f"failpoint: exiting {after}, {self.count} durable call(s) into this request")
            os._exit(FAILPOINT_EXIT_CODE)  # no cleanup, no flush, no answer: a crash

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        self._crash_if_due(f"before {what}")  # only for k = 0
        result = function(*args)
        # A call that raised is not counted: the volume is poisoned anyway (E_IO).
        self.count += 1
        if self._remaining is not None:
            self._remaining -= 1
            self._crash_if_due(f"after {what}")
        return result

    # The calls. Each is one system call, counted once.

    def create_file(self, path: str) -> int:
        """Creates (or empties) a file and opens it read-write: one 'create'."""
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        return self._call(f"create {path}", os.open, path, flags, 0o644)

    def make_dir(self, path: str) -> None:
        self._call(f"mkdir {path}", os.mkdir, path, 0o755)

    def pwrite_all(self, fd: int, data: bytes, offset: int) -> None:
        """Writes all of `data` at `offset`. A regular file normally takes it in one
        call; a short write is continued, one counted call per system call."""
        view = memoryview(data)
        # Bounded: every call writes at least one byte or raises.
        for _ in range(len(data) + 1):
            if not view:
                return
            written = self._call(f"pwrite fd {fd} at {offset}", os.pwrite, fd, view, offset)
            if written <= 0:
                raise OSError(f"pwrite wrote {written} bytes")
            view = view[written:]
            offset += written
        raise OSError("pwrite made no progress")

    def fsync(self, fd: int) -> None:
        self._call(f"fsync fd {fd}", os.fsync, fd)

    def truncate(self, fd: int, size: int) -> None:
        self._call(f"ftruncate fd {fd} to {size}", os.ftruncate, fd, size)

    def rename(self, source: str, target: str) -> None:
        self._call(f"rename {source}", os.rename, source, target)

    def unlink(self, path: str) -> None:
        self._call(f"unlink {path}", os.unlink, path)

    def fsync_dir(self, path: str) -> None:
        """Makes a create, rename or unlink in `path` durable (docs/protocol.md section 5, rule 1)."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._call(f"fsync dir {path}", os.fsync, fd)
        finally:
            os.close(fd)


def pread_exact(fd: int, size: int, offset: int) -> bytes:
    """Reads exactly `size` bytes (not durable I/O, not counted)."""
    chunks: list[bytes] = []
    remaining = size
    # Bounded: every call reads at least one byte or we stop.
    for _ in range(size + 1):
        if remaining == 0:
            return b"".join(chunks)
        chunk = os.pread(fd, remaining, offset)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
        offset += len(chunk)
    raise OSError(f"short read: {size - remaining} of {size} bytes at offset {offset}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------- metadata


def zeros(count: int) -> str:
    return "0" * count


def with_bit(bits: str, index: int) -> str:
    """The bit string with bit `index` set (bit strings are immutable: a new one)."""
    return bits[:index] + "1" + bits[index + 1 :]


def set_bits(bits: str) -> list[int]:
    return [index for index, bit in enumerate(bits) if bit == "1"]


@dataclass(frozen=True)
class Meta:
    """The durable state that is not region content: geometry, phase and maps.

    The maps are bit strings, region 0 first, exactly as the `state` op reports
    them. `cow_valid[r]` says whether COW slot r holds W[r]; a slot whose bit is
    clear may hold anything (a copy made by a write that crashed before its
    metadata commit, or a copy from an earlier cycle) and is never read.
    """

    regions: int
    region_size: int
    phase: str
    current: str  # C
    next_map: str  # X
    cow_valid: str  # W: which slots hold a preserved copy

    @staticmethod
    def fresh(regions: int, region_size: int) -> Meta:
        empty = zeros(regions)
        return Meta(regions, region_size, IDLE, empty, empty, empty)

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "regions": self.regions,
            "regionSize": self.region_size,
            "phase": self.phase,
            "current": self.current,
            "next": self.next_map,
            "cow": self.cow_valid,
        }

    def encode(self) -> bytes:
        """One JSON line; the checksum covers the canonical form of every other field."""
        body = self._body()
        record = dict(body, checksum=sha256_hex(_canonical(body)))
        return json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n"

    @staticmethod
    def decode(raw: bytes) -> Meta:
        """Parses and checks a metadata file; anything wrong is E_CORRUPT (never repaired)."""

        def corrupt(why: str) -> VolumeError:
            return VolumeError("E_CORRUPT", f"open: {META_FILE} {why}")

        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise corrupt(f"is not JSON ({error})") from None
        if not isinstance(record, dict):
            raise corrupt("is not a JSON object")
        if record.get("format") != FORMAT_NAME or record.get("version") != FORMAT_VERSION:
            raise corrupt(f"is not {FORMAT_NAME} version {FORMAT_VERSION}")
        checksum = record.pop("checksum", None)
        if checksum != sha256_hex(_canonical(record)):
            raise corrupt("fails its checksum")
        regions, region_size = record.get("regions"), record.get("regionSize")
        problem = geometry_problem(regions, region_size)
        if problem is not None:
            raise corrupt(f"has a bad geometry: {problem}")
        meta = Meta(
            regions=regions,
            region_size=region_size,
            phase=record.get("phase"),
            current=record.get("current"),
            next_map=record.get("next"),
            cow_valid=record.get("cow"),
        )
        problem = meta.inconsistency()
        if problem is not None:
            raise corrupt(f"is inconsistent: {problem}")
        return meta

    def inconsistency(self) -> str | None:
        """What no sequence of operations can produce, or None."""
        if self.phase not in (IDLE, REPLICATING):
            return f"unknown phase {self.phase!r}"
        for name, bits in (("current", self.current), ("next", self.next_map), ("cow", self.cow_valid)):
            if not isinstance(bits, str) or len(bits) != self.regions or bits.strip("01"):
                return f"the {name} map is not {self.regions} bits"
        if self.phase == IDLE and "1" in self.current:
            return "the current map is not clear while idle"
        if self.phase == IDLE and "1" in self.cow_valid:
            return "a COW slot is valid while idle"
        # This format's own invariant: a write during a cycle sets the COW bit and
        # the next bit in the same commit, and only the swap clears the next map.
        for region in set_bits(self.cow_valid):
            if self.next_map[region] != "1":
                return f"COW slot {region} is valid but the next bit of region {region} is clear"
        return None


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def geometry_problem(regions: Any, region_size: Any) -> str | None:
    """Why a geometry is out of bounds, or None (E_SIZE at creation)."""
    if type(regions) is not int or not 1 <= regions <= MAX_REGIONS:
        return f"regions must be an integer in 1..{MAX_REGIONS}, got {regions!r}"
    if (
        type(region_size) is not int
        or not SECTOR_SIZE <= region_size <= MAX_REGION_SIZE
        or region_size % SECTOR_SIZE != 0
    ):
        return (
            f"regionSize must be a multiple of {SECTOR_SIZE} in {SECTOR_SIZE}..{MAX_REGION_SIZE}, "
            f"got {region_size!r}"
        )
    return None


# ------------------------------------------------------------------------- volume


class Volume:
    """An open volume: the protocol of docs/protocol.md section 2 on the files of one directory.

    Every operation has two halves. The judgement raises VolumeError before any
    I/O, so a rejected operation changes nothing; the order is the one of docs/protocol.md
    section 2: E_RANGE (region), E_SIZE (data), then E_PHASE, E_NOT_CURRENT,
    E_NOT_DRAINED. The effect is a fixed sequence of durable steps.

    The only volatile state is `sent`: the regions transferred since the swap or
    since this open. After a crash every region of C must be sent again.
    """

    def __init__(self, io: DurableIo, path: str, dir_fd: int, meta: Meta, fds: dict[str, int]) -> None:
        self.io = io
        self.path = path
        self._dir_fd = dir_fd  # held open for the lock
        self.meta = meta
        self._primary = fds[PRIMARY_FILE]
        self._secondary = fds[SECONDARY_FILE]
        self._cow = fds[COW_FILE]
        self.sent: set[int] = set()

    # ------------------------------------------------------------- lifecycle

    @staticmethod
    def create(io: DurableIo, path: str, regions: int, region_size: int) -> Volume:
        """Makes an all-zero volume in `path` (made if missing) and opens it.

        The metadata is written last: until its rename the directory holds no
        volume, and a later create simply starts over (O_TRUNC). So a crash
        inside create leaves either no volume or a whole one.
        """
        problem = geometry_problem(regions, region_size)
        if problem is not None:
            raise VolumeError("E_SIZE", f"open(create) of {path}: {problem}")
        if os.path.lexists(path) and not os.path.isdir(path):
            # The name is taken by something that is not a directory (mkdir: EEXIST).
            raise VolumeError("E_EXISTS", f"open(create) of {path}: it exists and is not a directory")
        if not os.path.exists(path):
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise VolumeError("E_NOT_FOUND", f"open(create) of {path}: its parent directory does not exist")
            io.make_dir(path)
            io.fsync_dir(parent)  # the new directory's name is durable
        dir_fd = _lock_dir(path, "open(create)")
        try:
            if os.path.exists(os.path.join(path, META_FILE)):
                raise VolumeError("E_EXISTS", f"open(create) of {path}: a volume is there already")
            size = regions * region_size
            fds: dict[str, int] = {}
            try:
                for name in (PRIMARY_FILE, SECONDARY_FILE, COW_FILE):
                    fd = io.create_file(os.path.join(path, name))
                    fds[name] = fd
                    io.truncate(fd, size)  # a sparse file of zero bytes
                    io.fsync(fd)
                meta = Meta.fresh(regions, region_size)
                _commit_meta(io, path, meta)  # the volume exists from here on
            except BaseException:
                _close_all(fds.values())
                raise
            return Volume(io, path, dir_fd, meta, fds)
        except BaseException:
            os.close(dir_fd)  # releases the lock
            raise

    @staticmethod
    def open(io: DurableIo, path: str) -> Volume:
        """Opens an existing volume and recovers it.

        Recovery has nothing to repair: every durable step of every operation
        leaves an allowed state (README.md). It only forgets the sent set (it is
        volatile) and removes a metadata temporary that a crash left behind.

        It first makes durable what it is about to read: after a kill the page
        cache still holds the killed operation's unsynced writes (and a rename
        whose directory was not synced), and recovery must not build on them as
        if they were durable, or a later power loss could take them back.
        """
        if not os.path.isdir(path):
            raise VolumeError("E_NOT_FOUND", f"open of {path}: no such directory")
        dir_fd = _lock_dir(path, "open")
        fds: dict[str, int] = {}
        try:
            meta_path = os.path.join(path, META_FILE)
            io.fsync_dir(path)  # a metadata rename not yet durable becomes durable
            try:
                meta_fd = os.open(meta_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise VolumeError(
                    "E_NOT_FOUND", f"open of {path}: no volume there ({META_FILE} is missing)"
                ) from None
            try:
                io.fsync(meta_fd)
            finally:
                os.close(meta_fd)
            try:
                with open(meta_path, "rb") as meta_file:
                    raw = meta_file.read(MAX_REGIONS * 4 + 4096)  # bounded: metadata is small
            except FileNotFoundError:
                raise VolumeError(
                    "E_NOT_FOUND", f"open of {path}: no volume there ({META_FILE} is missing)"
                ) from None
            meta = Meta.decode(raw)
            size = meta.regions * meta.region_size
            for name in (PRIMARY_FILE, SECONDARY_FILE, COW_FILE):
                try:
                    fd = os.open(os.path.join(path, name), os.O_RDWR | os.O_CLOEXEC)
                except FileNotFoundError:
                    raise VolumeError("E_CORRUPT", f"open of {path}: {name} is missing") from None
                fds[name] = fd
                io.fsync(fd)  # synced before it is read, like the metadata
                actual = os.fstat(fd).st_size
                if actual != size:
                    raise VolumeError("E_CORRUPT", f"open of {path}: {name} is {actual} bytes, expected {size}")
            temp_path = os.path.join(path, META_TEMP_FILE)
            if os.path.lexists(temp_path):
                # A commit cut short before its rename: the old metadata is in force.
                io.unlink(temp_path)
                io.fsync_dir(path)
            log(f"open {path}: {meta.regions} regions of {meta.region_size} bytes, {meta.phase}")
            return Volume(io, path, dir_fd, meta, fds)
        except BaseException:
            _close_all(fds.values())
            os.close(dir_fd)
            raise

    def close(self) -> None:
        """Releases the files and the lock. Nothing to flush: every acknowledged
        operation is durable already."""
        _close_all([self._primary, self._secondary, self._cow, self._dir_fd])

    # ------------------------------------------------------------ judgements

    def _where(self, op: str, region: int | None = None) -> str:
        """The start of every message: the operation, the region, the phase."""
        target = f"{op}(region {region})" if region is not None else op
        return f"{target} while {self.meta.phase}"

    def _judge_region(self, op: str, region: int) -> None:
        if not 0 <= region < self.meta.regions:
            raise VolumeError("E_RANGE", f"{self._where(op, region)}: region outside 0..{self.meta.regions - 1}")

    def _judge_phase(self, op: str, phase: str, why: str, region: int | None = None) -> None:
        if self.meta.phase != phase:
            raise VolumeError("E_PHASE", f"{self._where(op, region)}: {why}")

    # ------------------------------------------------------------ operations

    def write(self, region: int, data: bytes) -> None:
        """P[r] := data, X[r] := 1, and while replicating W[r] := P[r] on the first write.

        Durable order (docs/protocol.md): the COW copy, then the next bit, then
        the data. A crash before the data lands leaves the old P[r], with the
        copy and the bit each there or not; once the data has landed, both are.
        """
        self._judge_region("write", region)
        if len(data) != self.meta.region_size:
            raise VolumeError(
                "E_SIZE",
                f"{self._where('write', region)}: data is {len(data)} bytes, "
                f"not regionSize {self.meta.region_size}",
            )
        meta = self.meta
        offset = region * meta.region_size
        preserve = meta.phase == REPLICATING and meta.cow_valid[region] == "0"
        # Step 1: preserve the point-in-time content in COW slot r. Until step 2
        # marks the slot valid, nothing reads it, so a crash here changes nothing.
        if preserve:
            self.io.pwrite_all(self._cow, pread_exact(self._primary, meta.region_size, offset), offset)
            self.io.fsync(self._cow)
        # Step 2: X[r] := 1 (and the COW bit) in one atomic metadata commit. It must
        # precede the data: new data without its next bit would be lost by the
        # next cycle, new data without its copy would lose the point in time.
        if preserve or meta.next_map[region] == "0":
            updated = replace(meta, next_map=with_bit(meta.next_map, region))
            if preserve:
                updated = replace(updated, cow_valid=with_bit(updated.cow_valid, region))
            self._commit(updated)
        # Step 3: the data. Acknowledged only once it is synced.
        self.io.pwrite_all(self._primary, data, offset)
        self.io.fsync(self._primary)

    def read(self, region: int, volume: str) -> bytes:
        """P[r], or S[r] for the secondary. Makes no durable I/O call."""
        self._judge_region("read", region)
        fd = self._primary if volume == "primary" else self._secondary
        return pread_exact(fd, self.meta.region_size, region * self.meta.region_size)

    def start_cycle(self) -> None:
        """The swap: C := X, X := 0, W := empty, phase replicating, in ONE rename.

        A crash leaves the state before (old metadata) or after (new metadata),
        never a half swap. Stale COW slots need no clearing: their bits are clear.
        """
        self._judge_phase("startCycle", IDLE, "a cycle is already running")
        meta = self.meta
        empty = zeros(meta.regions)
        self._commit(replace(meta, phase=REPLICATING, current=meta.next_map, next_map=empty, cow_valid=empty))
        self.sent.clear()

    def transfer(self, region: int) -> None:
        """S[r] := view(r), where view(r) is W[r] if preserved, else P[r].

        One durable step (the secondary's region, then its sync): a crash leaves
        S[r] old or new. The region counts as sent only once it is durable.
        """
        self._judge_region("transfer", region)
        self._judge_phase("transfer", REPLICATING, "no cycle is running", region)
        if self.meta.current[region] != "1":
            raise VolumeError("E_NOT_CURRENT", f"{self._where('transfer', region)}: its current-map bit is clear")
        size = self.meta.region_size
        offset = region * size
        source = self._cow if self.meta.cow_valid[region] == "1" else self._primary
        self.io.pwrite_all(self._secondary, pread_exact(source, size, offset), offset)
        self.io.fsync(self._secondary)
        self.sent.add(region)

    def complete_cycle(self) -> None:
        """C := 0, W := empty, phase idle, in ONE rename; X is kept for the next cycle.

        Allowed once every region of C was sent since the swap or this open (C is
        not cleared bit by bit as regions are sent: FIG. 4B, T3).
        """
        self._judge_phase("completeCycle", REPLICATING, "no cycle is running")
        unsent = [region for region in set_bits(self.meta.current) if region not in self.sent]
        if unsent:
            listed = ", ".join(str(region) for region in unsent[:REGIONS_LISTED_MAX])
            more = f" and {len(unsent) - REGIONS_LISTED_MAX} more" if len(unsent) > REGIONS_LISTED_MAX else ""
            raise VolumeError(
                "E_NOT_DRAINED",
                f"{self._where('completeCycle')}: current-map region(s) {listed}{more} not sent "
                "since the swap or the last open",
            )
        empty = zeros(self.meta.regions)
        self._commit(replace(self.meta, phase=IDLE, current=empty, cow_valid=empty))
        self.sent.clear()

    def state(self) -> dict[str, Any]:
        """The observable state of docs/protocol.md section 6, as the `state` op reports it."""
        meta = self.meta
        size = meta.region_size

        def digests(fd: int) -> list[str]:
            return [sha256_hex(pread_exact(fd, size, region * size)) for region in range(meta.regions)]

        cow_data = [
            sha256_hex(pread_exact(self._cow, size, region * size)) if meta.cow_valid[region] == "1" else None
            for region in range(meta.regions)
        ]
        return {
            "phase": meta.phase,
            "current": meta.current,
            "next": meta.next_map,
            "cow": meta.cow_valid,
            "primary": digests(self._primary),
            "secondary": digests(self._secondary),
            "cowData": cow_data,
        }

    def _commit(self, meta: Meta) -> None:
        """Makes `meta` durable, then adopts it in memory."""
        _commit_meta(self.io, self.path, meta)
        self.meta = meta


def _commit_meta(io: DurableIo, path: str, meta: Meta) -> None:
    """Replaces the metadata atomically: write a temporary, fsync it, rename it over
    the old one, fsync the directory. Five durable calls. Before the rename the old
    metadata is in force, from the rename on the new one: nothing in between."""
    temp_path = os.path.join(path, META_TEMP_FILE)
    fd = io.create_file(temp_path)
    try:
        io.pwrite_all(fd, meta.encode(), 0)
        io.fsync(fd)  # the content is durable before the name points at it
    finally:
        os.close(fd)
    io.rename(temp_path, os.path.join(path, META_FILE))
    io.fsync_dir(path)  # the rename itself is durable


def _lock_dir(path: str, op: str) -> int:
    """Takes an exclusive lock on the volume directory and returns its descriptor.

    flock belongs to the open file description, so the kernel drops it when the
    process dies however it dies: a crashed adapter never blocks the next open.
    """
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(dir_fd)
        raise VolumeError("E_LOCKED", f"{op} of {path}: the volume is open in another process") from None
    return dir_fd


def _close_all(fds: Any) -> None:
    for fd in list(fds):
        try:
            os.close(fd)
        except OSError:
            pass


# ------------------------------------------------------------------------ adapter


def _field(request: dict[str, Any], name: str, kind: type, op: str) -> Any:
    """A required field of an exact type (a JSON true is not an integer here)."""
    if name not in request:
        raise VolumeError("E_BAD_REQUEST", f"{op}: the field {name!r} is missing")
    value = request[name]
    if type(value) is not kind:
        raise VolumeError("E_BAD_REQUEST", f"{op}: the field {name!r} must be {kind.__name__}, got {value!r:.40}")
    return value


def _data_field(request: dict[str, Any], op: str) -> bytes:
    text = _field(request, "data", str, op)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VolumeError("E_BAD_REQUEST", f"{op}: the field 'data' is not base64") from None


class Adapter:
    """The request loop's state: at most one open volume, and the I/O counter.

    With no volume open (before `open`, after `close`, and in every new process
    after a crash) a volume operation is E_PHASE, whatever its arguments, like
    every operation but recover after a crash (docs/protocol.md section 2). Malformed
    fields are still E_BAD_REQUEST first: the request is judged before the state.
    """

    def __init__(self) -> None:
        self.io = DurableIo()
        self.volume: Volume | None = None
        # Why the volume was dropped after a storage failure, until open or close.
        self.failure: str | None = None
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "hello": self.hello,
            "open": self.open,
            "write": self.write,
            "read": self.read,
            "startCycle": self.start_cycle,
            "transfer": self.transfer,
            "completeCycle": self.complete_cycle,
            "state": self.state,
            "failpoint": self.failpoint,
            "close": self.close,
        }

    # ------------------------------------------------------------- the loop

    def handle_line(self, line: bytes) -> dict[str, Any]:
        """One request line in, one response out. Never raises for bad input."""
        self.io.start_request()
        request_id: int | None = None
        op_name = "request"  # for the messages of a failure before the op is known
        try:
            try:
                request = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise VolumeError("E_BAD_REQUEST", "the request is not a JSON object on one line") from None
            if not isinstance(request, dict):
                raise VolumeError("E_BAD_REQUEST", "the request is not a JSON object")
            if type(request.get("id")) is int:
                request_id = request["id"]
            else:
                raise VolumeError("E_BAD_REQUEST", "the request has no integer 'id'")
            op = request.get("op")
            handler = self.handlers.get(op) if isinstance(op, str) else None
            if handler is None:
                raise VolumeError("E_BAD_REQUEST", f"unknown op {op!r:.40}")
            op_name = op
            fields = handler(request)
            return {"id": request_id, "ok": True, **fields, "io": self.io.count}
        except VolumeError as error:
            log(f"request {request_id}: {error.code} {error.message}")
            return self._error(request_id, error.code, error.message)
        except OSError as error:
            # A storage call failed (EIO, ENOSPC, ...). After a failed fsync the
            # kernel may have dropped the dirty pages, so a retry could report
            # success over lost data: drop the volume; reopening recovers from
            # what is durable.
            return self._fail(request_id, op_name, f"{error.__class__.__name__}: {error}")
        except Exception as error:  # a bug in this file: same treatment, with the traceback
            log(traceback.format_exc())
            return self._fail(request_id, op_name, f"internal error: {error!r}")

    def reject_oversized(self) -> dict[str, Any]:
        self.io.start_request()
        return self._error(None, "E_BAD_REQUEST", f"the request line exceeds {MAX_LINE_BYTES} bytes")

    def _error(self, request_id: int | None, code: str, message: str) -> dict[str, Any]:
        return {"id": request_id, "ok": False, "error": {"code": code, "message": message}, "io": self.io.count}

    def _fail(self, request_id: int | None, op: str, why: str) -> dict[str, Any]:
        """E_IO, a project code beside those of docs/protocol.md (as in the reference
        implementation): a storage call failed, and the volume is dropped."""
        if self.volume is None:
            where = f"{op} while no volume is open"
        else:
            where = f"{op} while {self.volume.meta.phase} on {self.volume.path}"
            self.volume.close()
            self.volume = None
            self.failure = why
        log(f"request {request_id}: {where}: storage failure: {why}")
        return self._error(request_id, "E_IO", f"{where}: {why}; open the volume again to recover")

    def shutdown(self) -> None:
        if self.volume is not None:
            self.volume.close()
            self.volume = None

    def _open_volume(self, op: str) -> Volume:
        if self.volume is not None:
            return self.volume
        if self.failure is not None:
            raise VolumeError(
                "E_IO", f"{op} while no volume is open: it failed earlier ({self.failure}); open it again"
            )
        raise VolumeError("E_PHASE", f"{op} while no volume is open: send open first")

    # -------------------------------------------------------------- the ops

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "name": ADAPTER_NAME, "version": ADAPTER_VERSION, "features": FEATURES}

    def open(self, request: dict[str, Any]) -> dict[str, Any]:
        path = _field(request, "dir", str, "open")
        create = _field(request, "create", bool, "open")
        if not path:
            raise VolumeError("E_BAD_REQUEST", "open: the field 'dir' is empty")
        if create:
            regions = _field(request, "regions", int, "open")
            region_size = _field(request, "regionSize", int, "open")
        # One volume per adapter: an open replaces the open volume (closed cleanly
        # first, so that reopening the same directory does not lock itself out).
        self.shutdown()
        self.failure = None
        if create:
            self.volume = Volume.create(self.io, path, regions, region_size)
        else:
            self.volume = Volume.open(self.io, path)
        return {"phase": self.volume.meta.phase}

    def write(self, request: dict[str, Any]) -> dict[str, Any]:
        region = _field(request, "region", int, "write")
        data = _data_field(request, "write")
        self._open_volume("write").write(region, data)
        return {}

    def read(self, request: dict[str, Any]) -> dict[str, Any]:
        region = _field(request, "region", int, "read")
        volume = _field(request, "volume", str, "read")
        if volume not in ("primary", "secondary"):
            raise VolumeError(
                "E_BAD_REQUEST", f"read: the field 'volume' must be primary or secondary, got {volume!r:.40}"
            )
        data = self._open_volume("read").read(region, volume)
        return {"data": base64.b64encode(data).decode("ascii")}

    def start_cycle(self, request: dict[str, Any]) -> dict[str, Any]:
        self._open_volume("startCycle").start_cycle()
        return {}

    def transfer(self, request: dict[str, Any]) -> dict[str, Any]:
        region = _field(request, "region", int, "transfer")
        self._open_volume("transfer").transfer(region)
        return {}

    def complete_cycle(self, request: dict[str, Any]) -> dict[str, Any]:
        self._open_volume("completeCycle").complete_cycle()
        return {}

    def state(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._open_volume("state").state()

    def failpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        if "crashAfterIo" not in request:
            raise VolumeError("E_BAD_REQUEST", "failpoint: the field 'crashAfterIo' is missing")
        calls = request["crashAfterIo"]
        if calls is not None and (type(calls) is not int or calls < 0):
            raise VolumeError(
                "E_BAD_REQUEST", f"failpoint: crashAfterIo must be a count >= 0 or null, got {calls!r:.40}"
            )
        mode = request.get("mode", "process")
        if mode == "power":
            raise VolumeError("E_BAD_REQUEST", "failpoint: mode 'power' is not offered (no feature power-loss)")
        if mode != "process":
            raise VolumeError("E_BAD_REQUEST", f"failpoint: unknown mode {mode!r:.40}")
        self.io.arm(calls)
        return {}

    def close(self, request: dict[str, Any]) -> dict[str, Any]:
        """Closes the open volume, if any (closing nothing is not an error)."""
        self.shutdown()
        self.failure = None
        return {}


def read_request_line(stream: Any) -> tuple[bytes, bool] | None:
    """The next input line without its line end, and whether it was too long to
    read (then its bytes are skipped and the line is answered E_BAD_REQUEST).
    None at the end of input."""
    line = stream.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
        return line.rstrip(b"\r\n"), False
    # Skip the rest of the oversized line, one bounded chunk at a time; the loop
    # ends at the line's newline or at the end of input.
    while True:
        rest = stream.readline(1 << 20)
        if not rest or rest.endswith(b"\n"):
            return b"", True


def main() -> int:
    adapter = Adapter()
    stdin = sys.stdin.buffer
    stdout = sys.stdout
    try:
        while True:  # one request per line, until standard input closes
            read = read_request_line(stdin)
            if read is None:
                break
            line, oversized = read
            if oversized:
                response = adapter.reject_oversized()
            elif not line.strip():
                continue  # a blank line is not a request: no response
            else:
                response = adapter.handle_line(line)
            stdout.write(json.dumps(response, separators=(",", ":")) + "\n")
            stdout.flush()
    except BrokenPipeError:
        pass  # the suite went away: nothing left to answer
    finally:
        adapter.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
