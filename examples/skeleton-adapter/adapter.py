#!/usr/bin/env python3
"""A minimal cowmap adapter (adapter protocol 1: docs/adapter.md; rules: docs/protocol.md section 2). The volume
lives in memory, saved whole to one file after every change so that it survives a kill. What it leaves out: README.md."""
import base64, binascii, fcntl, hashlib, json, os, sys, traceback
from pathlib import Path
STATE_FILE, LOCK_FILE = "volume.json", "lock"
VOLUME_OPS = ("write", "read", "startCycle", "transfer", "completeCycle", "state")
b64 = lambda data: base64.b64encode(data).decode("ascii")
digest = lambda data: hashlib.sha256(data).hexdigest()
bits = lambda values: "".join("1" if value else "0" for value in values)
failure = lambda request_id, code, message: {"id": request_id, "ok": False, "error": {"code": code, "message": message}}

class Rejected(Exception): """Rejected(code, message): a rejection, which changes nothing."""

def field(request, name, kind):  # a field of exactly this JSON type (a bool is not an int)
    value = request.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Rejected("E_BAD_REQUEST", f"{request['op']}: the field '{name}' must be a {kind.__name__}, got {json.dumps(value)[:40]}")
    return value

def decode(text, op):
    try:
        return base64.b64decode(text, validate=True)  # strict: the alphabet and the padding
    except (binascii.Error, ValueError, TypeError):
        raise Rejected("E_BAD_REQUEST", f"{op}: the data is not base64")

class Volume:
    def __init__(self, path, lock_fd, doc):  # doc: the saved form, state(b64); a damaged one raises
        self.path, self.lock_fd, self.sent = path, lock_fd, set()  # the sent set is volatile: never saved
        self.regions, self.size, self.phase = doc["regions"], doc["regionSize"], doc["phase"]
        self.current, self.next = [c == "1" for c in doc["current"]], [c == "1" for c in doc["next"]]
        load = lambda text: base64.b64decode(text, validate=True)
        self.primary, self.secondary = [load(x) for x in doc["primary"]], [load(x) for x in doc["secondary"]]
        self.cow = {region: load(x) for region, x in enumerate(doc["cowData"]) if x is not None}
        if {len(self.current), len(self.next), len(self.primary), len(self.secondary), len(doc["cowData"])} != {self.regions}:
            raise ValueError("the maps and the regions disagree with the geometry")
    def state(self, encode=digest):  # regions encoded as digests to report, as base64 to save
        return {"phase": self.phase, "current": bits(self.current), "next": bits(self.next),
                "cow": bits(region in self.cow for region in range(self.regions)),
                "primary": [encode(x) for x in self.primary], "secondary": [encode(x) for x in self.secondary],
                "cowData": [encode(self.cow[region]) if region in self.cow else None for region in range(self.regions)]}
    def save(self):  # temporary file, fsync, rename over the old one, fsync the directory: all or nothing
        temporary = os.path.join(self.path, STATE_FILE + ".tmp")
        with open(temporary, "w") as file:
            json.dump({"regions": self.regions, "regionSize": self.size, **self.state(b64)}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, os.path.join(self.path, STATE_FILE))
        directory = os.open(self.path, os.O_RDONLY)
        os.fsync(directory)
        os.close(directory)
    def judge(self, op, region=None, phase=None):  # the arguments before the state: E_RANGE, then E_PHASE
        where = f"{op}({'' if region is None else f'region {region}'}) while {self.phase}"
        if region is not None and not 0 <= region < self.regions:
            raise Rejected("E_RANGE", f"{where}: the volume has regions 0..{self.regions - 1}")
        if phase is not None and self.phase != phase: raise Rejected("E_PHASE", f"{where}: allowed only while {phase}")
        return where
    def write(self, region, data):
        where = self.judge("write", region)
        if len(data) != self.size: raise Rejected("E_SIZE", f"{where}: {len(data)} bytes, a region is {self.size}")
        if self.phase == "replicating" and region not in self.cow:
            self.cow[region] = self.primary[region]  # copy on write, whatever C[region] is
        self.primary[region], self.next[region] = data, True
        self.save()
    def read(self, region, volume):
        self.judge("read", region)
        return {"data": b64((self.primary if volume == "primary" else self.secondary)[region])}
    def startCycle(self):
        self.judge("startCycle", phase="idle")
        self.current, self.next, self.cow, self.phase, self.sent = self.next, [False] * self.regions, {}, "replicating", set()
        self.save()
    def transfer(self, region):
        where = self.judge("transfer", region, "replicating")
        if not self.current[region]: raise Rejected("E_NOT_CURRENT", f"{where}: its current-map bit is clear")
        self.secondary[region] = self.cow.get(region, self.primary[region])  # the snapshot view
        self.save()
        self.sent.add(region)
    def completeCycle(self):
        where = self.judge("completeCycle", phase="replicating")
        unsent = [region for region in range(self.regions) if self.current[region] and region not in self.sent]
        if unsent: raise Rejected("E_NOT_DRAINED", f"{where}: {len(unsent)} region(s) of the current map not sent, the first {unsent[0]}")
        self.current, self.cow, self.phase = [False] * self.regions, {}, "idle"
        self.save()

class Adapter:
    volume = None
    def handle(self, request):
        op = request.get("op")
        if op == "hello": return {"protocol": 1, "name": "skeleton", "version": "0.1.0", "features": []}
        if op in ("open", "close"): return getattr(self, op)(request)
        if op not in VOLUME_OPS: raise Rejected("E_BAD_REQUEST", f"unknown op {json.dumps(op)[:40]}")
        args = [field(request, "region", int)] if op in ("write", "read", "transfer") else []
        args += [decode(field(request, "data", str), op)] if op == "write" else [request.get("volume")] if op == "read" else []
        if op == "read" and args[1] not in ("primary", "secondary"):
            raise Rejected("E_BAD_REQUEST", "read: the field 'volume' must be \"primary\" or \"secondary\"")
        if self.volume is None: raise Rejected("E_PHASE", f"{op} while no volume is open: send open first")
        return getattr(self.volume, op)(*args) or {}
    def open(self, request):
        path, create = field(request, "dir", str), field(request, "create", bool)
        regions, size = (field(request, "regions", int), field(request, "regionSize", int)) if create else (0, 0)
        if not path or "\0" in path: raise Rejected("E_BAD_REQUEST", "open: the field 'dir' must be a path")
        if create and (regions < 1 or size < 512 or size % 512 or regions * size > 1 << 30):  # P, S and W are in memory
            raise Rejected("E_SIZE", f"open: {regions} regions of {size} bytes is not a geometry this adapter takes")
        self.close(request)
        state_path = os.path.join(path, STATE_FILE)
        if create and os.path.isfile(state_path): raise Rejected("E_EXISTS", f"open: a volume exists in {path}")
        if not create and not os.path.isfile(state_path): raise Rejected("E_NOT_FOUND", f"open: no volume in {path}")
        os.makedirs(path, exist_ok=True)
        lock_fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel drops it when the holder dies
            zeros, clear = [b64(bytes(size))] * regions, "0" * regions
            fresh = dict(regions=regions, regionSize=size, phase="idle", current=clear, next=clear, primary=zeros, secondary=zeros, cowData=[None] * regions)
            volume = Volume(path, lock_fd, fresh if create else json.loads(Path(state_path).read_bytes()))
            if create: volume.save()
        except BaseException as error:
            os.close(lock_fd)
            if isinstance(error, BlockingIOError): raise Rejected("E_LOCKED", f"open: {path} is open in another process")
            if isinstance(error, (ValueError, KeyError, TypeError)):
                raise Rejected("E_CORRUPT", f"open: the volume file in {path} is damaged ({error}); nothing was repaired")
            raise
        self.volume = volume
        return {"phase": volume.phase}
    def close(self, request=None):  # releases the lock; every change is already durable
        if self.volume is not None: os.close(self.volume.lock_fd)
        self.volume = None
        return {}

def answer(adapter, line):
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict) or type(request.get("id")) is not int:
        return failure(None, "E_BAD_REQUEST", "the request is not a JSON object with an integer id")
    try:
        return {"id": request["id"], "ok": True, **adapter.handle(request)}
    except Rejected as error:
        return failure(request["id"], *error.args)
    except Exception as error:  # a failed storage call, or a bug: answer, log, keep serving
        traceback.print_exc(file=sys.stderr)
        adapter.close()
        return failure(request["id"], "E_IO", f"{request.get('op')}: {error}; the volume was closed")

if __name__ == "__main__":
    adapter = Adapter()
    for line in filter(bytes.strip, sys.stdin.buffer):  # strictly one request at a time; blank lines get no answer
        sys.stdout.write(json.dumps(answer(adapter, line)) + "\n")
        sys.stdout.flush()  # the suite waits for this line
    adapter.close()
