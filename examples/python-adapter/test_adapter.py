"""Self-test of the example adapter, driven as a subprocess over adapter protocol v1.

Run: python3 -m unittest discover -s examples/python-adapter

What it covers:
- the FIG. 4 scenario of docs/protocol.md section 7, with the state digests at T0..T3;
- every rejection code, the precedence of docs/protocol.md section 2, and that a rejected
  op changes nothing and makes no durable I/O call;
- crashes between requests (SIGKILL) and the volatile sent set;
- a failpoint crash at every k inside each kind of operation (a write during a
  cycle first of all), followed by a reopen whose state must be one of the
  outcomes that docs/protocol.md section 5 and docs/protocol.md allow;
- a seeded random run against a small model, with random kills and failpoints.

The model here (`Model`, `crash_outcomes`) is a deliberately small restatement of
the rules; the project's own model is `model/` (TypeScript).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import importlib.util
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from dataclasses import dataclass, replace
from typing import Any
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER = os.path.join(HERE, "adapter.py")
FAILPOINT_EXIT_CODE = 86  # adapter.py: how the process ends at a failpoint
REPLY_TIMEOUT_SECONDS = 20.0
REGION_SIZE = 512
NAMES = "ABCD"  # FIG. 4 names regions 0..3 A, B, C, D


def content(label: str, size: int = REGION_SIZE) -> bytes:
    """A label's UTF-8 bytes followed by zero bytes up to the region size (docs/protocol.md section 7)."""
    raw = label.encode("utf-8")
    return raw + bytes(size - len(raw))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ZERO = bytes(REGION_SIZE)


# ------------------------------------------------------------------ the adapter


class AdapterDied(Exception):
    """The adapter closed its output without answering (a crash)."""


class Adapter:
    """One adapter process, one request at a time."""

    def __init__(self, test: unittest.TestCase) -> None:
        self.test = test
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, ADAPTER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=0,
        )
        self.next_id = 1
        self._buffer = b""

    def _read_line(self) -> bytes:
        """One response line, or AdapterDied at end of output; a hang fails the test."""
        fd = self.proc.stdout.fileno()
        for _ in range(1 << 16):  # bounded: every pass reads bytes, ends, or times out
            if b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                return line
            ready, _, _ = select.select([fd], [], [], REPLY_TIMEOUT_SECONDS)
            if not ready:
                self.test.fail(f"no answer within {REPLY_TIMEOUT_SECONDS}s; stderr:\n{self.log()}")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise AdapterDied()
            self._buffer += chunk
        self.test.fail("response too long")

    def send_raw(self, line: bytes) -> dict[str, Any]:
        self.proc.stdin.write(line + b"\n")
        return json.loads(self._read_line())

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        request_id = self.next_id
        self.next_id += 1
        response = self.send_raw(json.dumps({"id": request_id, "op": op, **fields}).encode())
        self.test.assertEqual(response.get("id"), request_id, response)
        self.test.assertIsInstance(response.get("io"), int, response)
        return response

    def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        response = self.request(op, **fields)
        self.test.assertTrue(response["ok"], f"{op} {fields}: {response}")
        return response

    def error(self, op: str, code: str, **fields: Any) -> dict[str, Any]:
        response = self.request(op, **fields)
        self.test.assertFalse(response["ok"], f"{op} {fields}: expected {code}, got {response}")
        self.test.assertEqual(response["error"]["code"], code, f"{op} {fields}: {response}")
        self.test.assertIsInstance(response["error"]["message"], str)
        return response

    def write(self, region: int, label: str) -> dict[str, Any]:
        return self.ok("write", region=region, data=b64(content(label)))

    def state(self) -> dict[str, Any]:
        response = self.ok("state")
        self.test.assertEqual(response["io"], 0, "state makes no durable I/O call")
        return {key: response[key] for key in ("phase", "current", "next", "cow", "primary", "secondary", "cowData")}

    def request_or_crash(self, op: str, **fields: Any) -> dict[str, Any] | None:
        """The response, or None when the process ended at its failpoint instead."""
        try:
            return self.request(op, **fields)
        except AdapterDied:
            self.test.assertEqual(self.proc.wait(timeout=REPLY_TIMEOUT_SECONDS), FAILPOINT_EXIT_CODE, self.log())
            self._dispose()
            return None

    def expect_crash(self, op: str, **fields: Any) -> None:
        """`op` must end the process at its failpoint, without an answer."""
        response = self.request_or_crash(op, **fields)
        self.test.assertIsNone(response, f"{op} should have crashed at its failpoint")

    def kill(self) -> None:
        """A crash between requests."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=REPLY_TIMEOUT_SECONDS)
        self._dispose()

    def close(self) -> None:
        """End of input: the adapter must exit cleanly."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.test.assertEqual(self.proc.wait(timeout=REPLY_TIMEOUT_SECONDS), 0, self.log())
        self._dispose()

    def _dispose(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.stderr.close()

    def log(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")
        except ValueError:
            return "(closed)"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """docs/protocol.md section 2 as pure functions over region bytes (the sent set included)."""

    phase: str
    current: tuple[bool, ...]
    next: tuple[bool, ...]
    cow: tuple[bytes | None, ...]
    primary: tuple[bytes, ...]
    secondary: tuple[bytes, ...]
    sent: frozenset[int] = frozenset()

    @staticmethod
    def fresh(regions: int) -> Model:
        clear = (False,) * regions
        return Model("idle", clear, clear, (None,) * regions, (ZERO,) * regions, (ZERO,) * regions)

    def preserve(self, region: int) -> Model:
        return replace(self, cow=_put(self.cow, region, self.primary[region]))

    def mark_next(self, region: int) -> Model:
        return replace(self, next=_put(self.next, region, True))

    def write(self, region: int, data: bytes) -> Model:
        state = self.preserve(region) if self.first_write(region) else self
        return replace(state.mark_next(region), primary=_put(state.primary, region, data))

    def first_write(self, region: int) -> bool:
        return self.phase == "replicating" and self.cow[region] is None

    def start_cycle(self) -> Model:
        regions = len(self.current)
        return replace(self, phase="replicating", current=self.next, next=(False,) * regions,
                       cow=(None,) * regions, sent=frozenset())

    def view(self, region: int) -> bytes:
        preserved = self.cow[region]
        return preserved if preserved is not None else self.primary[region]

    def transfer(self, region: int) -> Model:
        return replace(self, secondary=_put(self.secondary, region, self.view(region)), sent=self.sent | {region})

    def drained(self) -> bool:
        return all(region in self.sent for region, bit in enumerate(self.current) if bit)

    def complete_cycle(self) -> Model:
        regions = len(self.current)
        return replace(self, phase="idle", current=(False,) * regions, cow=(None,) * regions, sent=frozenset())

    def recovered(self) -> Model:
        return replace(self, sent=frozenset())

    def observed(self) -> dict[str, Any]:
        """The model state as the adapter's `state` op reports it."""
        return {
            "phase": self.phase,
            "current": bits(self.current),
            "next": bits(self.next),
            "cow": "".join("0" if copy is None else "1" for copy in self.cow),
            "primary": [digest(data) for data in self.primary],
            "secondary": [digest(data) for data in self.secondary],
            "cowData": [None if copy is None else digest(copy) for copy in self.cow],
        }


def _put(values: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return values[:index] + (value,) + values[index + 1 :]


def bits(values: tuple[bool, ...]) -> str:
    return "".join("1" if bit else "0" for bit in values)


def crash_outcomes(before: Model, op: str, region: int | None = None, data: bytes | None = None) -> list[Model]:
    """The recovered states allowed after a crash inside `op` (docs/protocol.md section 5 and
    docs/protocol.md). A write is three durable steps in this order: the COW copy
    (first write in a cycle), the next bit, the data. Before the data lands, the
    copy and the bit may each be there or not; once it has, both are."""
    if op == "write":
        assert region is not None and data is not None
        outcomes = []
        for with_copy in (False, True) if before.first_write(region) else (False,):
            for with_bit in (False, True):
                state = before.preserve(region) if with_copy else before
                outcomes.append(state.mark_next(region) if with_bit else state)
        outcomes.append(before.write(region, data))
    elif op == "transfer":
        assert region is not None
        outcomes = [before, before.transfer(region)]
    elif op == "startCycle":
        outcomes = [before, before.start_cycle()]
    elif op == "completeCycle":
        outcomes = [before, before.complete_cycle()]
    else:
        outcomes = [before]
    return [outcome.recovered() for outcome in outcomes]


def check_invariants(test: unittest.TestCase, state: Model, at_swap: tuple[bytes, ...] | None) -> None:
    """docs/protocol.md section 3 on one state (INV-SNAPSHOT needs P@swap)."""
    for region in range(len(state.primary)):
        if state.primary[region] != state.secondary[region]:
            test.assertTrue(state.current[region] or state.next[region], f"INV-COVER fails at region {region}")
    if state.phase == "idle":
        test.assertFalse(any(state.current), "INV-CLEAN: C set while idle")
        test.assertTrue(all(copy is None for copy in state.cow), "INV-CLEAN: W not empty while idle")
    elif at_swap is not None:
        for region in range(len(state.primary)):
            test.assertEqual(state.view(region), at_swap[region], f"INV-SNAPSHOT fails at region {region}")


# --------------------------------------------------------------------- the tests


class AdapterTestCase(unittest.TestCase):
    """Every test gets a scratch directory and closes the adapters it started."""

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="cowmap-py-")
        self.adapters: list[Adapter] = []

    def tearDown(self) -> None:
        for adapter in self.adapters:
            if adapter.proc.poll() is None:
                adapter.proc.kill()
                adapter.proc.wait()
            adapter._dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> Adapter:
        adapter = Adapter(self)
        self.adapters.append(adapter)
        return adapter

    def volume_dir(self, name: str = "volume") -> str:
        return os.path.join(self.root, name)

    def create(self, regions: int = 4, name: str = "volume") -> Adapter:
        adapter = self.start()
        response = adapter.ok("open", dir=self.volume_dir(name), create=True, regions=regions, regionSize=REGION_SIZE)
        self.assertEqual(response["phase"], "idle")
        return adapter

    def reopen(self, name: str = "volume") -> tuple[Adapter, str]:
        adapter = self.start()
        response = adapter.ok("open", dir=self.volume_dir(name), create=False)
        return adapter, response["phase"]

    def assert_state(self, adapter: Adapter, expected: Model, where: str = "") -> None:
        self.assertEqual(adapter.state(), expected.observed(), where)


class HelloAndBadInput(AdapterTestCase):
    def test_hello(self) -> None:
        adapter = self.start()
        response = adapter.ok("hello")
        self.assertEqual(response["protocol"], 1)
        self.assertEqual(response["name"], "python-example")
        self.assertEqual(response["features"], ["failpoint"])
        self.assertEqual(response["io"], 0)
        adapter.close()

    def test_bad_requests_never_crash_the_process(self) -> None:
        adapter = self.create()
        adapter.write(1, "B1")
        before = adapter.state()
        raw_lines = [b"not json", b"[1, 2]", b'"text"', b"{\"op\": \"hello\"}", b"{\"id\": \"7\", \"op\": \"hello\"}",
                     b"\xff\xfe", b"{\"id\": 1, \"op\": " + b"[" * 100000 + b"]" * 100000 + b"}"]
        for line in raw_lines:
            response = adapter.send_raw(line)
            self.assertFalse(response["ok"], line[:40])
            self.assertEqual(response["error"]["code"], "E_BAD_REQUEST", line[:40])
            self.assertEqual(response["io"], 0)
        cases: list[tuple[str, dict[str, Any]]] = [
            ("frobnicate", {}),
            ("write", {"data": b64(content("X"))}),  # region missing
            ("write", {"region": 1}),  # data missing
            ("write", {"region": "1", "data": b64(content("X"))}),
            ("write", {"region": True, "data": b64(content("X"))}),
            ("write", {"region": 1.0, "data": b64(content("X"))}),
            ("write", {"region": 1, "data": "not base64!"}),
            ("write", {"region": 1, "data": b64(content("X")).rstrip("=")}),  # base64 without its padding
            ("write", {"region": 1, "data": 12345}),
            ("write", {"region": 1.5, "data": b64(content("X"))}),
            ("write", {"region": None, "data": b64(content("X"))}),
            ("write", {"region": 99, "data": "not base64!"}),  # E_BAD_REQUEST before E_RANGE
            ("read", {"region": 1}),  # volume missing
            ("read", {"region": 1, "volume": "tertiary"}),
            ("transfer", {}),
            ("open", {"dir": self.volume_dir("other")}),  # create missing
            ("open", {"dir": self.volume_dir("other"), "create": True, "regions": 4}),  # regionSize missing
            ("open", {"dir": 5, "create": False}),
            ("open", {"dir": self.volume_dir("other"), "create": "yes"}),
            ("open", {"dir": self.volume_dir("other"), "create": True, "regions": "4", "regionSize": REGION_SIZE}),
            ("open", {"dir": self.volume_dir("other"), "create": True, "regions": 4, "regionSize": 512.5}),
            ("failpoint", {}),
            ("failpoint", {"crashAfterIo": -1}),
            ("failpoint", {"crashAfterIo": 1, "mode": "power"}),  # power-loss is not offered
            ("failpoint", {"crashAfterIo": 1, "mode": "torn"}),
        ]
        for op, fields in cases:
            response = adapter.error(op, "E_BAD_REQUEST", **fields)
            self.assertEqual(response["io"], 0, op)
        self.assertEqual(adapter.state(), before, "bad requests change nothing")
        self.assertFalse(os.path.exists(self.volume_dir("other")))
        adapter.ok("hello")
        adapter.close()

    def test_unknown_fields_are_ignored(self) -> None:
        adapter = self.create()
        adapter.ok("write", region=0, data=b64(content("A1")), comment="ignored", extra={"x": 1})
        adapter.ok("hello", whatever=True)
        adapter.close()


class Fig4Scenario(AdapterTestCase):
    """docs/protocol.md section 7: the golden scenario, checked on digests."""

    def expect(self, adapter: Adapter, where: str, phase: str, primary: str, secondary: str,
               current: str, next_bits: str, cow: str = "_ _ _ _") -> None:
        """Contents as FIG. 4 writes them: labels, region 0 first; "_" is an empty COW slot."""
        cow_labels = [None if label == "_" else label for label in cow.split()]
        expected = {
            "phase": phase,
            "current": current,
            "next": next_bits,
            "cow": "".join("0" if label is None else "1" for label in cow_labels),
            "primary": [digest(content(label)) for label in primary.split()],
            "secondary": [digest(content(label)) for label in secondary.split()],
            "cowData": [None if label is None else digest(content(label)) for label in cow_labels],
        }
        self.assertEqual(adapter.state(), expected, where)

    def cycle(self, adapter: Adapter) -> None:
        adapter.ok("startCycle")
        current = adapter.state()["current"]
        for region, bit in enumerate(current):
            if bit == "1":
                adapter.ok("transfer", region=region)
        adapter.ok("completeCycle")

    def test_fig4(self) -> None:
        adapter = self.create(regions=4)
        # T0: the primary holds A0 B0 C0 D0 and the secondary is in step with it.
        for region, label in enumerate(["A0", "B0", "C0", "D0"]):
            adapter.write(region, label)
        self.cycle(adapter)
        self.expect(adapter, "T0", "idle", "A0 B0 C0 D0", "A0 B0 C0 D0", "0000", "0000")
        # Writes before the swap land in the next map.
        for region, label in ((0, "A1"), (1, "B1"), (3, "D1")):
            adapter.write(region, label)
        self.assertEqual(adapter.state()["next"], "1101")
        adapter.ok("startCycle")
        self.expect(adapter, "after the swap", "replicating", "A1 B1 C0 D1", "A0 B0 C0 D0", "1101", "0000")
        # B is overwritten during the cycle: B1 is preserved, and B is sent from the copy.
        adapter.write(1, "B2")
        for region in (0, 1, 3):
            adapter.ok("transfer", region=region)
        self.expect(adapter, "T1", "replicating", "A1 B2 C0 D1", "A1 B1 C0 D1", "1101", "0100", "_ B1 _ _")
        adapter.ok("completeCycle")
        adapter.ok("startCycle")
        adapter.ok("transfer", region=1)
        self.expect(adapter, "T2", "replicating", "A1 B2 C0 D1", "A1 B2 C0 D1", "0100", "0000")
        # Every region overwritten during the cycle is preserved, whether or not its C bit is set.
        for region, label in ((0, "A0"), (1, "B0"), (3, "D0")):
            adapter.write(region, label)
        self.expect(adapter, "T3", "replicating", "A0 B0 C0 D0", "A1 B2 C0 D1", "0100", "1101", "A1 B2 _ D1")
        # Rejections change nothing.
        adapter.error("startCycle", "E_PHASE")
        adapter.error("transfer", "E_NOT_CURRENT", region=0)
        adapter.error("write", "E_RANGE", region=4, data=b64(content("E0")))
        self.expect(adapter, "T3 kept", "replicating", "A0 B0 C0 D0", "A1 B2 C0 D1", "0100", "1101", "A1 B2 _ D1")
        adapter.ok("completeCycle")
        self.expect(adapter, "after T3", "idle", "A0 B0 C0 D0", "A1 B2 C0 D1", "0000", "1101")
        self.cycle(adapter)
        self.expect(adapter, "in step", "idle", "A0 B0 C0 D0", "A0 B0 C0 D0", "0000", "0000")
        # Reads return the bytes themselves.
        self.assertEqual(adapter.ok("read", region=1, volume="primary")["data"], b64(content("B0")))
        self.assertEqual(adapter.ok("read", region=1, volume="secondary")["data"], b64(content("B0")))
        adapter.close()


class Rejections(AdapterTestCase):
    """Every code of docs/protocol.md section 2, its precedence, and that nothing changes."""

    def assert_rejected(self, adapter: Adapter, op: str, code: str, **fields: Any) -> None:
        before = adapter.state()
        response = adapter.error(op, code, **fields)
        self.assertEqual(response["io"], 0, f"{op} {code}: a rejection makes no durable I/O call")
        self.assertEqual(adapter.state(), before, f"{op} {code}: a rejection changes nothing")

    def test_rules_and_precedence(self) -> None:
        adapter = self.create(regions=4)
        good, short = b64(content("A1")), b64(content("A1", 100))
        # Idle.
        self.assert_rejected(adapter, "write", "E_RANGE", region=4, data=good)
        self.assert_rejected(adapter, "write", "E_RANGE", region=-1, data=good)
        self.assert_rejected(adapter, "write", "E_RANGE", region=4, data=short)  # E_RANGE before E_SIZE
        self.assert_rejected(adapter, "write", "E_SIZE", region=0, data=short)
        self.assert_rejected(adapter, "write", "E_SIZE", region=0, data=b64(content("A1", 1024)))
        self.assert_rejected(adapter, "read", "E_RANGE", region=4, volume="primary")
        self.assert_rejected(adapter, "read", "E_RANGE", region=4, volume="secondary")
        self.assert_rejected(adapter, "transfer", "E_RANGE", region=4)  # E_RANGE before E_PHASE
        self.assert_rejected(adapter, "transfer", "E_PHASE", region=0)  # E_PHASE before E_NOT_CURRENT
        self.assert_rejected(adapter, "completeCycle", "E_PHASE")
        # Replicating, C = 1010.
        adapter.write(0, "A1")
        adapter.write(2, "C1")
        adapter.ok("startCycle")
        self.assert_rejected(adapter, "startCycle", "E_PHASE")
        self.assert_rejected(adapter, "write", "E_SIZE", region=1, data=short)
        self.assert_rejected(adapter, "transfer", "E_RANGE", region=7)
        self.assert_rejected(adapter, "transfer", "E_NOT_CURRENT", region=1)
        self.assert_rejected(adapter, "completeCycle", "E_NOT_DRAINED")
        adapter.ok("transfer", region=0)
        adapter.ok("transfer", region=0)  # resending is allowed
        self.assert_rejected(adapter, "completeCycle", "E_NOT_DRAINED")
        adapter.ok("transfer", region=2)
        adapter.ok("completeCycle")
        # An empty cycle is drained at once.
        adapter.ok("startCycle")
        adapter.ok("completeCycle")
        adapter.close()

    def test_messages_name_op_region_and_phase(self) -> None:
        adapter = self.create(regions=4)
        adapter.write(0, "A1")
        adapter.ok("startCycle")
        message = adapter.error("transfer", "E_NOT_CURRENT", region=1)["error"]["message"]
        self.assertIn("transfer", message)
        self.assertIn("region 1", message)
        self.assertIn("replicating", message)
        message = adapter.error("write", "E_RANGE", region=9, data=b64(content("x")))["error"]["message"]
        self.assertIn("write", message)
        self.assertIn("region 9", message)
        self.assertIn("replicating", message)
        adapter.close()

    def test_no_volume_open_is_e_phase(self) -> None:
        adapter = self.start()
        for op, fields in (("write", {"region": 99, "data": b64(ZERO)}), ("read", {"region": 0, "volume": "primary"}),
                           ("startCycle", {}), ("transfer", {"region": 0}), ("completeCycle", {}), ("state", {})):
            self.assertEqual(adapter.error(op, "E_PHASE", **fields)["io"], 0)
        adapter.ok("close")  # closing nothing is fine
        adapter = self.create()
        adapter.ok("close")
        adapter.error("state", "E_PHASE")
        adapter.close()

    def test_volume_files(self) -> None:
        path = self.volume_dir()
        adapter = self.start()
        adapter.error("open", "E_NOT_FOUND", dir=path, create=False)  # no directory
        os.mkdir(path)
        adapter.error("open", "E_NOT_FOUND", dir=path, create=False)  # no volume in it
        for regions, region_size in ((0, 512), (4, 0), (4, 100), (4, 513), (1 << 20, 512)):
            adapter.error("open", "E_SIZE", dir=path, create=True, regions=regions, regionSize=region_size)
        self.assertEqual(os.listdir(path), [], "a rejected create leaves nothing")
        adapter.ok("open", dir=path, create=True, regions=2, regionSize=REGION_SIZE)
        adapter.write(1, "B1")
        adapter.ok("close")
        adapter.error("open", "E_EXISTS", dir=path, create=True, regions=2, regionSize=REGION_SIZE)
        # Two processes: the second is locked out until the first is gone, however it goes.
        adapter.ok("open", dir=path, create=False)
        other = self.start()
        other.error("open", "E_LOCKED", dir=path, create=False)
        adapter.kill()
        other.ok("open", dir=path, create=False)
        self.assertEqual(other.state()["primary"][1], digest(content("B1")))
        other.close()

    def test_corrupt_volumes(self) -> None:
        path = self.volume_dir()
        self.create(regions=2).close()
        meta_path = os.path.join(path, "meta.json")
        with open(meta_path, "rb") as handle:
            good = handle.read()
        corruptions = {
            "a flipped bit": good.replace(b'"next":"00"', b'"next":"01"'),
            "truncated": good[: len(good) // 2],
            "empty": b"",
            "foreign": b'{"hello": "world"}\n',
        }
        for why, raw in corruptions.items():
            self.assertNotEqual(raw, good, why)
            with open(meta_path, "wb") as handle:
                handle.write(raw)
            adapter = self.start()
            adapter.error("open", "E_CORRUPT", dir=path, create=False)
            adapter.close()
            with open(meta_path, "rb") as handle:
                self.assertEqual(handle.read(), raw, f"{why}: never repaired silently")
        with open(meta_path, "wb") as handle:
            handle.write(good)
        os.truncate(os.path.join(path, "primary.img"), REGION_SIZE)
        adapter = self.start()
        adapter.error("open", "E_CORRUPT", dir=path, create=False)
        adapter.close()


class CrashesBetweenRequests(AdapterTestCase):
    def test_kill_and_reopen_shows_exactly_the_state(self) -> None:
        adapter = self.create(regions=4)
        model = Model.fresh(4)
        for region, label in ((0, "A1"), (1, "B1"), (3, "D1")):
            adapter.write(region, label)
            model = model.write(region, content(label))
        adapter.ok("startCycle")
        model = model.start_cycle()
        adapter.write(1, "B2")
        model = model.write(1, content("B2"))
        for region in (0, 1, 3):
            adapter.ok("transfer", region=region)
            model = model.transfer(region)
        adapter.kill()
        # The sent set is volatile: after the crash every region of C must be sent again.
        adapter, phase = self.reopen()
        self.assertEqual(phase, "replicating")
        model = model.recovered()
        self.assert_state(adapter, model, "after the kill")
        adapter.error("completeCycle", "E_NOT_DRAINED")
        for region in (0, 1):
            adapter.ok("transfer", region=region)
        adapter.error("completeCycle", "E_NOT_DRAINED")
        adapter.ok("transfer", region=3)
        adapter.ok("completeCycle")
        model = model.transfer(0).transfer(1).transfer(3).complete_cycle()
        self.assert_state(adapter, model, "after completion")
        adapter.kill()
        adapter, phase = self.reopen()
        self.assertEqual(phase, "idle")
        self.assert_state(adapter, model, "after a second kill")
        adapter.close()


class FailpointCrashes(AdapterTestCase):
    """A crash after the k-th durable I/O call inside one operation, for every k."""

    def prepare(self, name: str) -> tuple[Adapter, Model]:
        """A volume in the middle of a cycle: C = 1101, B overwritten (W[B] = B1), A sent."""
        adapter = self.create(regions=4, name=name)
        model = Model.fresh(4)
        steps = [("write", 0, "A0"), ("write", 1, "B0"), ("write", 2, "C0"), ("write", 3, "D0"), ("startCycle",),
                 ("transfer", 0), ("transfer", 1), ("transfer", 2), ("transfer", 3), ("completeCycle",),
                 ("write", 0, "A1"), ("write", 1, "B1"), ("write", 3, "D1"), ("startCycle",),
                 ("write", 1, "B2"), ("transfer", 0)]
        for step in steps:
            model = self.apply(adapter, model, step)
        return adapter, model

    def apply(self, adapter: Adapter, model: Model, step: tuple[Any, ...]) -> Model:
        op = step[0]
        if op == "write":
            adapter.write(step[1], step[2])
            return model.write(step[1], content(step[2]))
        if op == "transfer":
            adapter.ok("transfer", region=step[1])
            return model.transfer(step[1])
        if op == "startCycle":
            adapter.ok("startCycle")
            return model.start_cycle()
        adapter.ok("completeCycle")
        return model.complete_cycle()

    def request_of(self, step: tuple[Any, ...]) -> dict[str, Any]:
        if step[0] == "write":
            return {"op": "write", "region": step[1], "data": b64(content(step[2]))}
        if step[0] == "transfer":
            return {"op": "transfer", "region": step[1]}
        return {"op": step[0]}

    def crash_at_every_call(self, step: tuple[Any, ...], extra: tuple[tuple[Any, ...], ...] = ()) -> list[Model]:
        """Runs `extra` then `step` with a failpoint at every k; checks every reopen.
        Returns the outcome seen for each k."""
        # A dry run counts the operation's durable calls.
        adapter, model = self.prepare("dry")
        for before_step in extra:
            model = self.apply(adapter, model, before_step)
        request = self.request_of(step)
        calls = adapter.ok(**request)["io"]
        self.assertGreater(calls, 0, f"{step} makes durable I/O calls")
        adapter.close()
        region = step[1] if len(step) > 1 else None
        data = content(step[2]) if step[0] == "write" else None
        allowed = crash_outcomes(model, step[0], region, data)  # the same before every k
        seen: list[Model] = []
        for k in range(calls + 1):  # k = calls: right after the last call, before the answer
            name = f"k{k}"
            adapter, model = self.prepare(name)
            for before_step in extra:
                model = self.apply(adapter, model, before_step)
            # P@swap, for INV-SNAPSHOT: the view while a cycle runs (the model keeps
            # INV-SNAPSHOT), or P itself when the crashed op is the swap.
            at_swap = tuple(model.view(index) if model.phase == "replicating" else model.primary[index]
                            for index in range(4))
            adapter.ok("failpoint", crashAfterIo=k)
            adapter.expect_crash(**request)
            adapter, _ = self.reopen(name)
            observed = adapter.state()
            matches = [outcome for outcome in allowed if outcome.observed() == observed]
            self.assertTrue(matches, f"{step} crashed after call {k}: state {observed} is not allowed")
            recovered = matches[0]
            check_invariants(self, recovered, at_swap)
            seen.append(recovered)
            self.finish_cycle(adapter, recovered)
            adapter.close()
        # k = 0 changes nothing; after the last call the whole operation is durable.
        self.assertEqual(seen[0].observed(), allowed[0].observed(), f"{step}: k = 0")
        self.assertEqual(seen[-1].observed(), allowed[-1].observed(), f"{step}: k = {calls}")
        return seen

    def finish_cycle(self, adapter: Adapter, model: Model) -> None:
        """The volume goes on: a running cycle must resend all of C, then completes
        with S = the point in time; one more cycle brings S in step with P."""
        if model.phase == "replicating":
            point_in_time = [digest(model.view(region)) for region in range(4)]
            if any(model.current):
                adapter.error("completeCycle", "E_NOT_DRAINED")  # the sent set was lost
            for region in range(4):
                if model.current[region]:
                    adapter.ok("transfer", region=region)
            adapter.ok("completeCycle")
            self.assertEqual(adapter.state()["secondary"], point_in_time, "INV-POINT-IN-TIME")
        adapter.ok("startCycle")
        for region, bit in enumerate(adapter.state()["current"]):
            if bit == "1":
                adapter.ok("transfer", region=region)
        adapter.ok("completeCycle")
        state = adapter.state()
        self.assertEqual(state["secondary"], state["primary"], "LIVENESS: S = P after the next cycle")
        self.assertEqual((state["current"], state["next"]), ("0000", "0000"))

    def test_first_write_during_a_cycle(self) -> None:
        # C[2] = 0 and X[2] = 0: the write preserves C0, sets the next bit, writes C9.
        seen = self.crash_at_every_call(("write", 2, "C9"))
        # The data never lands before its copy and its bit (checked by the outcomes);
        # and some crash shows the copy and the bit without the data.
        self.assertTrue(any(s.cow[2] is not None and s.primary[2] == content("C0") for s in seen), seen)

    def test_first_write_to_a_current_region(self) -> None:
        self.crash_at_every_call(("write", 3, "D9"))

    def test_second_write_during_a_cycle(self) -> None:
        self.crash_at_every_call(("write", 1, "B3"))

    def test_write_while_idle(self) -> None:
        self.crash_at_every_call(("write", 2, "C9"), extra=(("transfer", 1), ("transfer", 3), ("completeCycle",)))

    def test_transfer_from_the_cow_copy(self) -> None:
        self.crash_at_every_call(("transfer", 1))

    def test_start_cycle(self) -> None:
        self.crash_at_every_call(("startCycle",), extra=(("transfer", 1), ("transfer", 3), ("completeCycle",)))

    def test_complete_cycle(self) -> None:
        self.crash_at_every_call(("completeCycle",), extra=(("transfer", 1), ("transfer", 3)))

    def test_create(self) -> None:
        """A crash inside create leaves no volume or a whole, empty one."""
        dry = self.start()
        calls = dry.ok("open", dir=self.volume_dir("dry"), create=True, regions=4, regionSize=REGION_SIZE)["io"]
        dry.close()
        for k in range(calls + 1):
            path = self.volume_dir(f"create{k}")
            adapter = self.start()
            adapter.ok("failpoint", crashAfterIo=k)
            adapter.expect_crash("open", dir=path, create=True, regions=4, regionSize=REGION_SIZE)
            adapter = self.start()
            response = adapter.request("open", dir=path, create=False)
            if k == 0:
                self.assertEqual(response["error"]["code"], "E_NOT_FOUND", "k = 0: nothing was made")
            if k == calls:
                self.assertTrue(response["ok"], f"k = {k}: the whole create was durable: {response}")
            if not response["ok"]:
                # No volume: the create is redone over whatever it left.
                self.assertEqual(response["error"]["code"], "E_NOT_FOUND", f"k = {k}: {response}")
                adapter.ok("open", dir=path, create=True, regions=4, regionSize=REGION_SIZE)
            self.assert_state(adapter, Model.fresh(4), f"create, k = {k}")
            adapter.close()

    def test_failpoint_counts_across_requests_and_disarms(self) -> None:
        adapter, model = self.prepare("span")
        # Armed with more calls than the next request makes: it answers, and the
        # crash falls inside the request after it.
        calls = adapter.ok("transfer", region=1)["io"]
        adapter.ok("failpoint", crashAfterIo=calls + 1)
        adapter.ok("transfer", region=1)
        adapter.expect_crash("transfer", region=3)
        adapter, _ = self.reopen("span")
        model = model.transfer(1).recovered()
        observed = adapter.state()
        self.assertIn(observed, [outcome.observed() for outcome in crash_outcomes(model, "transfer", 3)])
        # Disarmed, nothing crashes.
        adapter.ok("failpoint", crashAfterIo=0)
        adapter.ok("failpoint", crashAfterIo=None)
        adapter.ok("transfer", region=3)
        adapter.close()


class StorageFailures(unittest.TestCase):
    """A failing storage call (EIO) is E_IO and drops the volume until it is reopened.

    In process, with one system call made to fail: the only test that imports
    adapter.py instead of running it (a failpoint here would end the test run)."""

    def test_failed_fsync_poisons_until_reopen(self) -> None:
        spec = importlib.util.spec_from_file_location("example_adapter", ADAPTER)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        self.addCleanup(sys.modules.pop, spec.name, None)
        spec.loader.exec_module(module)
        module.log = lambda message: None  # keep the test output clean
        root = tempfile.mkdtemp(prefix="cowmap-py-")
        self.addCleanup(shutil.rmtree, root, True)
        path = os.path.join(root, "volume")
        adapter = module.Adapter()
        self.addCleanup(adapter.shutdown)
        next_id = iter(range(1, 1000))

        def call(op: str, **fields: Any) -> dict[str, Any]:
            return adapter.handle_line(json.dumps({"id": next(next_id), "op": op, **fields}).encode())

        self.assertTrue(call("open", dir=path, create=True, regions=2, regionSize=REGION_SIZE)["ok"])
        self.assertTrue(call("write", region=0, data=b64(content("A1")))["ok"])
        with mock.patch.object(os, "fsync", side_effect=OSError(errno.EIO, "injected")):
            response = call("write", region=1, data=b64(content("B1")))
        self.assertEqual(response["error"]["code"], "E_IO", response)
        self.assertIn("write", response["error"]["message"])
        self.assertEqual(call("state")["error"]["code"], "E_IO", "the volume is dropped after a failure")
        self.assertEqual(call("write", region=9, data="")["error"]["code"], "E_IO")
        self.assertEqual(call("hello")["ok"], True)
        # Reopening recovers from what is durable: region 1 was never acknowledged.
        self.assertEqual(call("open", dir=path, create=False)["phase"], "idle")
        state = call("state")
        self.assertEqual(state["primary"][0], digest(content("A1")))
        self.assertIn(state["primary"][1], (digest(ZERO), digest(content("B1"))))
        self.assertTrue(call("write", region=1, data=b64(content("B2")))["ok"])


class RandomRun(AdapterTestCase):
    """A seeded random run against the model: every state compared, with kills and
    failpoints at random calls. The seed is printed on failure."""

    SEED = 20240611
    STEPS = 300
    REGIONS = 3

    def test_random_run(self) -> None:
        rng = random.Random(self.SEED)
        adapter = self.create(regions=self.REGIONS)
        model = Model.fresh(self.REGIONS)
        at_swap: tuple[bytes, ...] | None = None
        for step in range(self.STEPS):
            where = f"seed {self.SEED}, step {step}"
            op, region, label = self.pick(rng, model)
            fields: dict[str, Any] = {}
            if op in ("write", "transfer"):
                fields["region"] = region
            if op == "write":
                fields["data"] = b64(content(label))
            if op == "read":
                volume = rng.choice(["primary", "secondary"])
                if 0 <= region < self.REGIONS:
                    expected = (model.primary if volume == "primary" else model.secondary)[region]
                    response = adapter.ok("read", region=region, volume=volume)
                    self.assertEqual(base64.b64decode(response["data"]), expected, where)
                    self.assertEqual(response["io"], 0, where)
                else:
                    adapter.error("read", "E_RANGE", region=region, volume=volume)
                continue
            if op == "kill":
                adapter.kill()
                adapter, _ = self.reopen()
                model = model.recovered()
                self.assert_state(adapter, model, where)
                continue
            allowed_now, code = self.judge(model, op, region)
            if rng.random() < 0.2:
                # A failpoint at a random call: the op either crashes inside or answers.
                adapter.ok("failpoint", crashAfterIo=rng.randrange(0, 10))
                response = adapter.request_or_crash(op, **fields)
                if response is None:
                    adapter, _ = self.reopen()
                    outcomes = crash_outcomes(model, op, region, content(label) if op == "write" else None) \
                        if allowed_now else [model.recovered()]
                    observed = adapter.state()
                    matches = [outcome for outcome in outcomes if outcome.observed() == observed]
                    self.assertTrue(matches, f"{where}: {op} {region} crashed into a state not allowed: {observed}")
                    model = matches[0]
                    if model.phase == "idle":
                        at_swap = None
                    elif at_swap is None:  # the swap was durable: P@swap is P now
                        at_swap = model.primary
                    check_invariants(self, model, at_swap)
                    continue
                adapter.ok("failpoint", crashAfterIo=None)  # it answered: disarm
            else:
                response = adapter.request(op, **fields)
            if allowed_now:
                self.assertTrue(response["ok"], f"{where}: {op} {region}: {response}")
            else:
                self.assertFalse(response["ok"], f"{where}: {op} {region} should be {code}")
                self.assertEqual(response["error"]["code"], code, where)
                self.assertEqual(response["io"], 0, where)
            if allowed_now:
                if op == "write":
                    model = model.write(region, content(label))
                elif op == "transfer":
                    model = model.transfer(region)
                elif op == "startCycle":
                    model = model.start_cycle()
                    at_swap = model.primary
                elif op == "completeCycle":
                    self.assertEqual(model.secondary, at_swap, f"{where}: INV-POINT-IN-TIME")
                    model = model.complete_cycle()
                    at_swap = None
            self.assert_state(adapter, model, where)
            check_invariants(self, model, at_swap)
        adapter.close()

    def pick(self, rng: random.Random, model: Model) -> tuple[str, int, str]:
        """A random op, steered so that cycles do complete: while replicating, a
        transfer usually picks an unsent region of C, and a drained cycle is
        usually completed."""
        unsent = [index for index, bit in enumerate(model.current) if bit and index not in model.sent]
        if model.phase == "replicating" and not unsent and rng.random() < 0.5:
            return "completeCycle", 0, ""
        ops, weights = ["write", "transfer", "startCycle", "completeCycle", "read", "kill"], [40, 30, 10, 10, 5, 5]
        op = rng.choices(ops, weights=weights)[0]
        if op == "transfer" and unsent and rng.random() < 0.8:
            region = rng.choice(unsent)
        elif rng.random() < 0.1:
            region = rng.choice([-1, self.REGIONS])  # out of range
        else:
            region = rng.randrange(self.REGIONS)
        label = f"{NAMES[max(region, 0) % 4]}{rng.randrange(100)}"
        return op, region, label

    def judge(self, model: Model, op: str, region: int) -> tuple[bool, str | None]:
        """The model's verdict: allowed, or the code (docs/protocol.md section 2 precedence)."""
        in_range = 0 <= region < self.REGIONS
        if op == "write":
            return (True, None) if in_range else (False, "E_RANGE")
        if op == "transfer":
            if not in_range:
                return False, "E_RANGE"
            if model.phase != "replicating":
                return False, "E_PHASE"
            return (True, None) if model.current[region] else (False, "E_NOT_CURRENT")
        if op == "startCycle":
            return (True, None) if model.phase == "idle" else (False, "E_PHASE")
        if model.phase != "replicating":
            return False, "E_PHASE"
        return (True, None) if model.drained() else (False, "E_NOT_DRAINED")


if __name__ == "__main__":
    unittest.main()
