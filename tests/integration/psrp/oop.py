"""PSRP over pwsh's stdio "OutOfProc" server mode (``pwsh -s``).

One XML element per line in each direction (see psrp-bridge.md §1):

    client → pwsh   <Data Stream='Default|PromptResponse' PSGuid='g'>BASE64</Data>
                    <Command PSGuid='g' />   <Signal PSGuid='g' />   <Close PSGuid='g' />
    pwsh → client   <Data Stream='Default' PSGuid='g'>BASE64</Data>
                    <DataAck PSGuid='g' />   <CommandAck .../>  <SignalAck .../>  <CloseAck .../>

GUID text is lowercase; the all-zero GUID is the runspace pool.  Rules kept
here: at most one un-acknowledged Data per GUID; no pipeline Data before its
CommandAck; exactly one Close per pipeline, every pipeline closed before the
pool, then EOF on stdin; never an empty line.
"""

from __future__ import annotations

import base64
import collections
import os
import shutil
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET

from .fragments import NIL_UUID
from .transport import PSRPTransport, ReceiveResult, TransportError, TransportTimeout

__all__ = ["OutOfProcTransport", "find_pwsh"]

_EXTRA_PWSH_DIRS = ("/root/.dotnet/tools", "/usr/local/bin", "/opt/microsoft/powershell/7")


def find_pwsh() -> str | None:
    """Path of a pwsh executable, or None."""
    env = os.environ.get("PSRP_TEST_PWSH")
    if env and os.access(env, os.X_OK):
        return env
    found = shutil.which("pwsh")
    if found:
        return found
    for d in _EXTRA_PWSH_DIRS:
        p = os.path.join(d, "pwsh")
        if os.access(p, os.X_OK):
            return p
    return None


def _guid_text(pid: uuid.UUID | None) -> str:
    return str(pid or NIL_UUID).lower()


class OutOfProcTransport(PSRPTransport):
    """Runs ``pwsh -NoLogo -NoProfile -s`` and speaks its line protocol."""

    max_fragment_size = 32768
    max_payload_size = 32768
    #: pwsh answers a stop Signal with PIPELINE_STATE Stopped; if it does not
    #: within this many seconds, PowerShell.stop() settles the state itself.
    stop_grace = 5.0

    def __init__(self, executable: str | None = None,
                 arguments: tuple[str, ...] = ("-NoLogo", "-NoProfile", "-s"),
                 *, env: dict | None = None, cwd: str | None = None,
                 ack_timeout: float = 60.0):
        exe = executable or find_pwsh()
        if not exe:
            raise TransportError("pwsh not found")
        self.ack_timeout = ack_timeout
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=200)
        self.unknown_lines: list[str] = []
        #: Every packet line written / read, for debugging ("<" = from pwsh).
        self.trace: collections.deque[tuple[str, str]] = collections.deque(maxlen=2000)

        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._lanes: dict[str, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self._awaiting_data_ack: set[str] = set()
        self._acks: set[tuple[str, str]] = set()   # (kind, guid) received
        self._commands: set[str] = set()           # pipelines given a Command
        self._closed_lanes: set[str] = set()       # pipelines given a Close
        self._eof = False
        self._pool_closed = False

        proc_env = dict(os.environ if env is None else env)
        proc_env.setdefault("POWERSHELL_TELEMETRY_OPTOUT", "1")
        proc_env.setdefault("POWERSHELL_UPDATECHECK", "Off")
        self.process = subprocess.Popen(
            [exe, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=proc_env, cwd=cwd, bufsize=0,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read_stdout, name="pwsh-stdout",
                                        daemon=True)
        self._err_reader = threading.Thread(target=self._read_stderr, name="pwsh-stderr",
                                            daemon=True)
        self._reader.start()
        self._err_reader.start()

    # -- reading ---------------------------------------------------------------

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                self.trace.append(("<", line[:300]))
                self._handle_line(line)
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        try:
            for raw in self.process.stderr:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass

    def _handle_line(self, line: str) -> None:
        try:
            el = ET.fromstring(line)
        except ET.ParseError:
            self.unknown_lines.append(line)
            return
        kind = el.tag
        guid = (el.get("PSGuid") or "").lower() or _guid_text(None)
        with self._cond:
            if kind == "Data":
                try:
                    self._lanes[guid].append(base64.b64decode(el.text or ""))
                except ValueError:
                    self.unknown_lines.append(line)
                    return
            elif kind == "DataAck":
                self._awaiting_data_ack.discard(guid)
            elif kind in ("CommandAck", "SignalAck", "CloseAck"):
                self._acks.add((kind, guid))
            else:
                self.unknown_lines.append(line)
                return
            self._cond.notify_all()

    # -- writing ---------------------------------------------------------------

    def _write(self, line: str) -> None:
        if not line or "\n" in line or "\r" in line:
            raise ValueError("packet lines must be non-empty single lines")
        if self._eof or self.process.poll() is not None:
            raise TransportError("pwsh is not running (exit code %s): %s"
                                 % (self.process.poll(), self.stderr_text()))
        with self._write_lock:
            self.trace.append((">", line[:300]))
            try:
                self.process.stdin.write(line.encode("ascii") + b"\n")
                self.process.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise TransportError("writing to pwsh failed: %s; %s"
                                     % (e, self.stderr_text())) from None

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                if self._eof:
                    raise TransportError("pwsh exited while waiting for %s (exit code %s): %s"
                                         % (what, self.process.poll(), self.stderr_text()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportTimeout("timed out waiting for %s" % what)
                self._cond.wait(left)

    def _wait_ack(self, kind: str, guid: str, timeout: float | None = None) -> None:
        key = (kind, guid)
        self._wait(lambda: key in self._acks, timeout or self.ack_timeout,
                   "%s for %s" % (kind, guid))
        with self._cond:
            self._acks.discard(key)

    def _send_data(self, guid: str, payload: bytes, stream: str) -> None:
        self._wait(lambda: guid not in self._awaiting_data_ack, self.ack_timeout,
                   "DataAck for %s" % guid)
        with self._cond:
            self._awaiting_data_ack.add(guid)
        prio = "PromptResponse" if stream == "pr" else "Default"
        self._write("<Data Stream='%s' PSGuid='%s'>%s</Data>"
                    % (prio, guid, base64.b64encode(payload).decode("ascii")))

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    # -- PSRPTransport ----------------------------------------------------------

    def open_pool(self, rpid: uuid.UUID, payload: bytes) -> None:
        self._send_data(_guid_text(None), payload, "stdin")

    def send(self, pid, payload: bytes, *, stream: str = "stdin") -> None:
        guid = _guid_text(pid)
        if pid is not None and guid not in self._commands:
            raise TransportError("pipeline %s has no Command yet" % guid)
        self._send_data(guid, payload, stream)

    def create_pipeline(self, pid: uuid.UUID, payload: bytes) -> None:
        guid = _guid_text(pid)
        with self._cond:
            # A pipeline id may be reused after its Close.
            self._closed_lanes.discard(guid)
            self._lanes.pop(guid, None)
        self._write("<Command PSGuid='%s' />" % guid)
        self._wait_ack("CommandAck", guid)
        self._commands.add(guid)
        self._send_data(guid, payload, "stdin")

    def receive(self, pid, timeout: float) -> ReceiveResult:
        guid = _guid_text(pid)
        deadline = time.monotonic() + max(timeout, 0)
        with self._cond:
            lane = self._lanes[guid]
            while not lane and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            payloads = list(lane)
            lane.clear()
            return ReceiveResult(payloads, closed=self._eof and not payloads)

    def stop_pipeline(self, pid: uuid.UUID) -> None:
        guid = _guid_text(pid)
        self._write("<Signal PSGuid='%s' />" % guid)
        self._wait_ack("SignalAck", guid)

    def close_pipeline(self, pid: uuid.UUID) -> None:
        guid = _guid_text(pid)
        with self._cond:
            if guid not in self._commands or guid in self._closed_lanes:
                return
            self._closed_lanes.add(guid)
        self._write("<Close PSGuid='%s' />" % guid)
        self._wait_ack("CloseAck", guid)
        with self._cond:
            self._commands.discard(guid)

    def close_pool(self, timeout: float = 30.0) -> None:
        if self._pool_closed:
            return
        self._pool_closed = True
        try:
            if not self._eof and self.process.poll() is None:
                for guid in list(self._commands):
                    self.close_pipeline(uuid.UUID(guid))
                pool = _guid_text(None)
                self._write("<Close PSGuid='%s' />" % pool)
                self._wait_ack("CloseAck", pool, timeout)
        finally:
            self.close(timeout=10.0)

    @property
    def running(self) -> bool:
        return self.process.poll() is None and not self._eof

    def close(self, timeout: float = 10.0) -> None:
        """End pwsh: EOF on stdin, then a kill if it does not exit in time."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, 9)
            except OSError:
                self.process.kill()
            self.process.wait(5)
        self._reader.join(2)
        self._err_reader.join(2)
        for s in (self.process.stdout, self.process.stderr):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.close(timeout=5.0)
