"""Client-side RunspacePool and PowerShell (pipeline) state machines.

They build and parse real PSRP messages and delegate all I/O to a
:class:`~.transport.PSRPTransport`.  Nothing runs in the background: data is
only read inside ``open``/``poll``/``poll_invoke``/``end_invoke`` and the
like, so a test decides exactly when each receive happens.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import messages as m
from .clixml import PSDict, PSObject, PSVersion
from .fragments import NIL_UUID, Defragmenter, Fragmenter, Message, MessageType
from .messages import Command, HostCall, HostInfo, PSInvocationState, RunspacePoolState
from .transport import PSRPTransport, TransportError

__all__ = ["Host", "HostMethodError", "RunspacePool", "PowerShell", "Streams",
           "PSRPError", "RunspacePoolError", "PipelineError"]

log = logging.getLogger(__name__)


class PSRPError(Exception):
    """A PSRP-level failure seen by the client."""


class RunspacePoolError(PSRPError):
    def __init__(self, message: str, error: m.ErrorRecord | None = None):
        super().__init__(message)
        self.error = error


class PipelineError(PSRPError):
    def __init__(self, message: str, error: m.ErrorRecord | None = None):
        super().__init__(message)
        self.error = error


# ---------------------------------------------------------------------------
# Host
# ---------------------------------------------------------------------------

class HostMethodError(Exception):
    """Raised by a Host method to answer a host call with an error record."""


class Host:
    """A scriptable client host.

    * ``ReadLine`` answers from ``read_lines`` (a list of strings, consumed in
      order) or from the ``read_line`` callable; with neither it fails.
    * ``Write*`` calls are recorded in ``self.written`` as
      ``(method_name, text)`` and need no response.
    * Every call is recorded in ``self.calls``.
    * A method that is not implemented but needs a response is answered with
      an error record (``me``), so the remote command sees an exception
      instead of waiting forever.

    Subclasses add behaviour by defining a method named after the host method
    (``def PromptForChoice(self, caption, message, choices, default)``).
    """

    def __init__(self, read_lines: Iterable[str] | None = None, *,
                 read_line: Callable[[], str] | None = None,
                 name: str = "winrmd-test-host", version: str = "1.0.0.0",
                 instance_id: uuid.UUID | None = None, culture: str = "en-US",
                 raw_ui: bool = False, choice: int | None = None,
                 default_data: m.HostDefaultData | None = None):
        self.read_lines = collections.deque(read_lines or [])
        self.read_line = read_line
        self.name = name
        self.version = version
        self.instance_id = instance_id or uuid.uuid4()
        self.culture = culture
        self.raw_ui = raw_ui
        self.choice = choice
        self.default_data = default_data
        self.written: list[tuple[str, Any]] = []
        self.calls: list[HostCall] = []
        self.should_exit: int | None = None
        self._lock = threading.Lock()

    def host_info(self, use_runspace_host: bool = False) -> HostInfo:
        return HostInfo.with_host(raw_ui=self.raw_ui, use_runspace_host=use_runspace_host,
                                  default_data=self.default_data)

    # dispatch ------------------------------------------------------------------

    def invoke(self, call: HostCall):
        """Run one host call.  Returns the result; raises HostMethodError or
        NotImplementedError on failure."""
        with self._lock:
            self.calls.append(call)
        fn = getattr(self, call.method_name, None)
        if fn is None or not callable(fn):
            raise NotImplementedError("host method %s is not implemented" % call.method_name)
        return fn(*call.parameters)

    # read-only properties ---------------------------------------------------------

    def GetName(self):
        return self.name

    def GetVersion(self):
        return PSVersion(self.version)

    def GetInstanceId(self):
        return self.instance_id

    def GetCurrentCulture(self):
        return self.culture

    def GetCurrentUICulture(self):
        return self.culture

    # methods without results -----------------------------------------------------

    def SetShouldExit(self, exit_code):
        self.should_exit = int(exit_code)

    def NotifyBeginApplication(self):
        pass

    def NotifyEndApplication(self):
        pass

    # UI --------------------------------------------------------------------------

    def ReadLine(self):
        if self.read_lines:
            return self.read_lines.popleft()
        if self.read_line is not None:
            return self.read_line()
        raise HostMethodError("no input available for ReadLine")

    def Prompt(self, caption, message, descriptions):
        """Answer every field with the next ReadLine value (Read-Host -Prompt
        arrives here).  The result maps field names to answers."""
        self._record("Prompt", message or caption)
        answers = PSDict(type_names=["System.Collections.Hashtable", "System.Object"])
        for desc in descriptions or []:
            name = desc.get("name") if isinstance(desc, PSObject) else str(desc)
            answers[name or ""] = self.ReadLine()
        return answers

    def PromptForChoice(self, caption, message, choices, default_choice):
        self._record("PromptForChoice", message or caption)
        if self.choice is not None:
            return int(self.choice)
        return int(default_choice) if default_choice is not None and default_choice >= 0 else 0

    def _record(self, method: str, text):
        with self._lock:
            self.written.append((method, text))

    def Write1(self, value):
        self._record("Write1", value)

    def Write2(self, fg, bg, value):
        self._record("Write2", value)

    def WriteLine1(self):
        self._record("WriteLine1", "")

    def WriteLine2(self, value):
        self._record("WriteLine2", value)

    def WriteLine3(self, fg, bg, value):
        self._record("WriteLine3", value)

    def WriteErrorLine(self, value):
        self._record("WriteErrorLine", value)

    def WriteDebugLine(self, value):
        self._record("WriteDebugLine", value)

    def WriteVerboseLine(self, value):
        self._record("WriteVerboseLine", value)

    def WriteWarningLine(self, value):
        self._record("WriteWarningLine", value)

    def WriteProgress(self, source_id, record):
        self._record("WriteProgress", record)

    def WriteInformation(self, record):
        self._record("WriteInformation", record)

    @property
    def output_text(self) -> str:
        """Everything written through Write/WriteLine, as one string."""
        parts = []
        for method, text in self.written:
            if method in ("Write1", "Write2"):
                parts.append(str(text))
            elif method.startswith("WriteLine"):
                parts.append(str(text) + "\n")
        return "".join(parts)


# ---------------------------------------------------------------------------
# RunspacePool
# ---------------------------------------------------------------------------

class RunspacePool:
    """A client RunspacePool bound to one transport (one server pool)."""

    def __init__(self, transport: PSRPTransport, *, min_runspaces: int = 1,
                 max_runspaces: int = 1, host: Host | None = None,
                 application_arguments: dict | None = None,
                 thread_options: int = m.PSThreadOptions.DEFAULT,
                 apartment_state: int = m.ApartmentState.UNKNOWN,
                 rpid: uuid.UUID | None = None, protocol_version: str = "2.3",
                 ps_version: str = "2.0", serialization_version: str = "1.1.0.1"):
        self.transport = transport
        self.rpid = rpid or uuid.uuid4()
        self.min_runspaces = min_runspaces
        self.max_runspaces = max_runspaces
        self.host = host
        self.application_arguments = application_arguments
        self.thread_options = thread_options
        self.apartment_state = apartment_state
        self.client_protocol_version = PSVersion(protocol_version)
        self.ps_version = ps_version
        self.serialization_version = serialization_version

        self.state: RunspacePoolState = RunspacePoolState.BEFORE_OPEN
        self.state_error: m.ErrorRecord | None = None
        self.server_capability: m.SessionCapability | None = None
        self.application_private_data: dict | None = None
        self.init_data: m.RunspacePoolInitData | None = None
        self.user_events: list[m.UserEvent] = []
        self.session_key: str | None = None
        self.key_requested = False
        #: Every message received on the pool lane, in order.
        self.received: list[Message] = []
        self.pipelines: dict[uuid.UUID, "PowerShell"] = {}

        self.fragmenter = Fragmenter(transport.max_fragment_size)
        self._defrag: dict[uuid.UUID | None, Defragmenter] = collections.defaultdict(Defragmenter)
        self._ci = itertools.count(1)
        self._ci_responses: dict[int, m.RunspaceAvailability] = {}
        self._lock = threading.RLock()

    # -- helpers -----------------------------------------------------------------

    @property
    def protocol_version(self) -> PSVersion:
        """The version both sides speak (the server's answer once known)."""
        if self.server_capability and self.server_capability.protocol_version:
            return min(self.server_capability.protocol_version, self.client_protocol_version)
        return self.client_protocol_version

    def _message(self, mtype: int, data: str | bytes, pid: uuid.UUID | None = None) -> Message:
        return m.build_message(mtype, data, self.rpid, pid)

    def _payloads(self, messages: list[Message]) -> list[bytes]:
        self.fragmenter.max_size = self.transport.max_fragment_size
        frags = self.fragmenter.fragment_many(messages)
        return Fragmenter.group(frags, self.transport.max_payload_size)

    def send_message(self, mtype: int, data: str | bytes, pid: uuid.UUID | None = None,
                     stream: str = "stdin") -> None:
        """Fragment and send one client→server message."""
        for payload in self._payloads([self._message(mtype, data, pid)]):
            self.transport.send(pid, payload, stream=stream)

    def _check_opened(self) -> None:
        if self.state != RunspacePoolState.OPENED:
            raise RunspacePoolError("the runspace pool is %s, not Opened"
                                    % getattr(self.state, "name", self.state))

    # -- receiving -----------------------------------------------------------------

    def _decode(self, lane: uuid.UUID | None, payloads: Iterable[bytes]) -> list[Message]:
        out: list[Message] = []
        d = self._defrag[lane]
        for p in payloads:
            out.extend(d.feed(p))
        return out

    def poll(self, timeout: float = 1.0) -> list[Message]:
        """Receive once on the pool lane and process what arrived."""
        res = self.transport.receive(None, timeout)
        msgs = self._decode(None, res.payloads)
        for msg in msgs:
            self._process_pool_message(msg)
        if res.closed and self.state not in (RunspacePoolState.CLOSED,
                                             RunspacePoolState.BROKEN):
            self.state = RunspacePoolState.BROKEN
            if self.state_error is None:
                self.state_error = m.ErrorRecord("the transport closed the pool lane",
                                                 "TransportClosed", None)
        return msgs

    def _process_pool_message(self, msg: Message) -> None:
        with self._lock:
            self.received.append(msg)
        if msg.pid != NIL_UUID and msg.pid in self.pipelines:
            self.pipelines[msg.pid]._process_message(msg)
            return
        mt = msg.message_type
        parsed = m.parse_message(msg)
        if mt == MessageType.SESSION_CAPABILITY:
            self.server_capability = parsed
            self.transport.server_capability(parsed.protocol_version)
        elif mt == MessageType.APPLICATION_PRIVATE_DATA:
            self.application_private_data = parsed.data
        elif mt == MessageType.RUNSPACEPOOL_STATE:
            self.state = parsed.state
            if parsed.error is not None:
                self.state_error = parsed.error
        elif mt == MessageType.RUNSPACE_AVAILABILITY:
            self._ci_responses[parsed.ci] = parsed
        elif mt == MessageType.RUNSPACEPOOL_INIT_DATA:
            self.init_data = parsed
            if parsed.min_runspaces is not None:
                self.min_runspaces = parsed.min_runspaces
            if parsed.max_runspaces is not None:
                self.max_runspaces = parsed.max_runspaces
        elif mt == MessageType.RUNSPACEPOOL_HOST_CALL:
            self._answer_host_call(parsed, None, MessageType.RUNSPACEPOOL_HOST_RESPONSE)
        elif mt == MessageType.USER_EVENT:
            self.user_events.append(parsed)
        elif mt == MessageType.ENCRYPTED_SESSION_KEY:
            self.session_key = parsed.key
        elif mt == MessageType.PUBLIC_KEY_REQUEST:
            self.key_requested = True
        else:
            log.debug("unexpected pool message %s", msg.type_name)

    def _answer_host_call(self, call: HostCall, pid: uuid.UUID | None, resp_type: int,
                          host: Host | None = None) -> None:
        host = host or self.host
        needs_answer = call.expects_response
        result = error = None
        try:
            if host is None:
                raise NotImplementedError("no host is attached to this client")
            result = host.invoke(call)
        except NotImplementedError as e:
            error = m.error_record_object(str(e), exception_type="System.NotImplementedException",
                                          category=m.ErrorCategory.NOT_IMPLEMENTED)
        except HostMethodError as e:
            error = m.error_record_object(str(e),
                                          exception_type="System.Management.Automation.Host.HostException")
        except Exception as e:  # the host implementation itself failed
            log.exception("host method %s raised", call.method_name)
            error = m.error_record_object("%s: %s" % (type(e).__name__, e))
        if not needs_answer:
            return
        if error is not None:
            data = m.host_response(call.ci, call.method_id, error=error)
        else:
            data = m.host_response(call.ci, call.method_id, result)
        self.send_message(resp_type, data, pid, stream="pr")

    def _wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for %s" % what)
            self.poll(min(left, 5.0))
            if self.state == RunspacePoolState.BROKEN and not predicate():
                raise RunspacePoolError("the runspace pool broke while waiting for %s: %s"
                                        % (what, self.state_error), self.state_error)

    # -- operations ------------------------------------------------------------------

    def open(self, timeout: float = 60.0) -> "RunspacePool":
        if self.state != RunspacePoolState.BEFORE_OPEN:
            raise RunspacePoolError("open() needs a pool in state BeforeOpen")
        host_info = self.host.host_info() if self.host else HostInfo()
        caps = self._message(MessageType.SESSION_CAPABILITY, m.session_capability(
            str(self.client_protocol_version), self.ps_version, self.serialization_version))
        init = self._message(MessageType.INIT_RUNSPACEPOOL, m.init_runspace_pool(
            self.min_runspaces, self.max_runspaces, self.thread_options,
            self.apartment_state, host_info, self.application_arguments))
        payloads = self._payloads([caps, init])
        self.state = RunspacePoolState.OPENING
        self.transport.open_pool(self.rpid, payloads[0])
        for p in payloads[1:]:
            self.transport.send(None, p)
        self._wait_for(lambda: self.state in (RunspacePoolState.OPENED,
                                              RunspacePoolState.BROKEN,
                                              RunspacePoolState.CLOSED),
                       timeout, "the runspace pool to open")
        if self.state != RunspacePoolState.OPENED:
            raise RunspacePoolError("the runspace pool did not open (state %s): %s"
                                    % (getattr(self.state, "name", self.state),
                                       self.state_error), self.state_error)
        return self

    def close(self, timeout: float = 60.0, close_pipelines: bool = True) -> None:
        """Close the pool: every open pipeline first (unless
        ``close_pipelines`` is False, which leaves that to the server), then
        the pool itself (OOP Close + EOF, WSMan Delete)."""
        if self.state in (RunspacePoolState.CLOSED, RunspacePoolState.BEFORE_OPEN):
            self.transport.close()
            return
        broken = self.state == RunspacePoolState.BROKEN
        self.state = RunspacePoolState.CLOSING
        try:
            for ps in list(self.pipelines.values()):
                if not close_pipelines:
                    ps._lane_open = False
                    continue
                try:
                    ps.close()
                except (TransportError, PSRPError) as e:
                    log.debug("closing pipeline %s failed: %s", ps.pid, e)
            try:
                self.transport.close_pool(timeout)
            except TransportError:
                if not broken:
                    raise
        finally:
            self.state = RunspacePoolState.CLOSED
            self.transport.close()

    def __enter__(self) -> "RunspacePool":
        if self.state == RunspacePoolState.BEFORE_OPEN:
            self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, mtype: int, build: Callable[[int], str], timeout: float):
        self._check_opened()
        ci = next(self._ci)
        self.send_message(mtype, build(ci))
        self._wait_for(lambda: ci in self._ci_responses, timeout,
                       "the answer to call %d" % ci)
        return self._ci_responses.pop(ci).response

    def set_max_runspaces(self, value: int, timeout: float = 30.0) -> bool:
        ok = bool(self._call(MessageType.SET_MAX_RUNSPACES,
                             lambda ci: m.set_max_runspaces(ci, value), timeout))
        if ok:
            self.max_runspaces = value
        return ok

    def set_min_runspaces(self, value: int, timeout: float = 30.0) -> bool:
        ok = bool(self._call(MessageType.SET_MIN_RUNSPACES,
                             lambda ci: m.set_min_runspaces(ci, value), timeout))
        if ok:
            self.min_runspaces = value
        return ok

    def get_available_runspaces(self, timeout: float = 30.0) -> int:
        return int(self._call(MessageType.GET_AVAILABLE_RUNSPACES,
                              m.get_available_runspaces, timeout))

    def reset_runspace_state(self, timeout: float = 30.0) -> bool:
        return bool(self._call(MessageType.RESET_RUNSPACE_STATE,
                               m.reset_runspace_state, timeout))

    def get_command_metadata(self, names: Iterable[str] | str = "*",
                             command_type: int = m.CommandTypes.ALL,
                             namespace: Iterable[str] | None = None,
                             timeout: float = 60.0) -> list:
        """Run GET_COMMAND_METADATA; returns the command metadata objects
        (the leading count object is checked and dropped)."""
        if isinstance(names, str):
            names = [names]
        ps = PowerShell(self)
        ps._create = (MessageType.GET_COMMAND_METADATA,
                      m.get_command_metadata(list(names), command_type, namespace))
        out = ps.invoke(timeout=timeout)
        if ps.state == PSInvocationState.FAILED:
            raise PipelineError("GET_COMMAND_METADATA failed: %s" % ps.invocation_error,
                                ps.invocation_error)
        if out and isinstance(out[0], PSObject) and "Count" in out[0] and \
                not out[0].get("Name"):
            count = int(out[0]["Count"])
            out = out[1:]
            if count != len(out):
                raise PSRPError("server announced %d metadata objects, sent %d"
                                % (count, len(out)))
        return out

    def create_powershell(self, **kwargs) -> "PowerShell":
        return PowerShell(self, **kwargs)

    # -- disconnect / connect (WSMan) ---------------------------------------------

    def disconnect(self, **kwargs) -> None:
        self._check_opened()
        self.transport.disconnect(**kwargs)
        self.state = RunspacePoolState.DISCONNECTED

    def reconnect(self, **kwargs) -> None:
        if self.state != RunspacePoolState.DISCONNECTED:
            raise RunspacePoolError("reconnect() needs a Disconnected pool")
        self.transport.reconnect(**kwargs)
        self.state = RunspacePoolState.OPENED

    def connect(self, timeout: float = 60.0, wait_private_data: bool = True,
                send_counts: bool = False) -> "RunspacePool":
        """Attach to an existing server pool whose id is ``self.rpid`` (the
        Connect flow of a new client session).

        With ``wait_private_data`` the pool lane is polled until a fresh
        APPLICATION_PRIVATE_DATA arrives, which is what PowerShell's client
        waits for; otherwise no Receive is issued.
        """
        caps = self._message(MessageType.SESSION_CAPABILITY, m.session_capability(
            str(self.client_protocol_version), self.ps_version, self.serialization_version))
        conn = self._message(MessageType.CONNECT_RUNSPACEPOOL, m.connect_runspace_pool(
            self.min_runspaces if send_counts else None,
            self.max_runspaces if send_counts else None))
        self.fragmenter.max_size = self.transport.max_fragment_size
        frags = self.fragmenter.fragment_many([caps, conn])
        self.state = RunspacePoolState.CONNECTING
        self.application_private_data = None
        self.init_data = None
        response = self.transport.connect(self.rpid, b"".join(f.pack() for f in frags))
        for msg in self._decode(None, [response]):
            self._process_pool_message(msg)
        if self.init_data is None:
            raise RunspacePoolError("the connect response carried no RUNSPACEPOOL_INIT_DATA")
        if wait_private_data:
            self._wait_for(lambda: self.application_private_data is not None, timeout,
                           "APPLICATION_PRIVATE_DATA after Connect")
        self.state = RunspacePoolState.OPENED
        return self

    def connect_pipeline(self, pid: uuid.UUID, **kwargs) -> "PowerShell":
        """A PowerShell object for a pipeline that runs on the server already."""
        ps = PowerShell(self, pid=pid, **kwargs)
        self.transport.connect_pipeline(pid)
        ps.state = PSInvocationState.RUNNING
        return ps


# ---------------------------------------------------------------------------
# PowerShell
# ---------------------------------------------------------------------------

@dataclass
class Streams:
    error: list = field(default_factory=list)
    warning: list = field(default_factory=list)
    verbose: list = field(default_factory=list)
    debug: list = field(default_factory=list)
    information: list = field(default_factory=list)
    progress: list = field(default_factory=list)

    def clear(self) -> None:
        for lst in (self.error, self.warning, self.verbose, self.debug,
                    self.information, self.progress):
            lst.clear()


class PowerShell:
    """One pipeline of a RunspacePool (System.Management.Automation.PowerShell).

    Build commands with ``add_script``/``add_command``/``add_parameter``/
    ``add_argument``, run with ``invoke`` or ``begin_invoke`` + ``poll_invoke``
    / ``end_invoke``.  Output objects land in ``output``, the other streams in
    ``streams``.  After a terminal state the pipeline is closed on the
    transport automatically (``auto_close``).
    """

    def __init__(self, pool: RunspacePool, *, host: Host | None | bool = True,
                 add_to_history: bool = False,
                 remote_stream_options: int = m.RemoteStreamOptions.ADD_INVOCATION_INFO,
                 apartment_state: int = m.ApartmentState.UNKNOWN,
                 is_nested: bool = False, pid: uuid.UUID | None = None,
                 auto_close: bool = True):
        self.pool = pool
        self.pid = pid or uuid.uuid4()
        # host=True: use the pool's host; False/None: no host for this pipeline.
        self.host: Host | None = pool.host if host is True else (host or None)
        self.add_to_history = add_to_history
        self.remote_stream_options = remote_stream_options
        self.apartment_state = apartment_state
        self.is_nested = is_nested
        self.auto_close = auto_close
        self.commands: list[Command] = []
        self.output: list = []
        self.streams = Streams()
        self.host_calls: list[HostCall] = []
        self.received: list[Message] = []
        self.state: PSInvocationState = PSInvocationState.NOT_STARTED
        self.invocation_error: m.ErrorRecord | None = None
        self.command_state: str | None = None
        self.stop_requested = False
        self._create: tuple[int, str] | None = None  # overrides CREATE_PIPELINE
        self._expect_input = False
        self._lane_open = False

    # -- building ----------------------------------------------------------------

    def add_script(self, script: str, use_local_scope: bool | None = None) -> "PowerShell":
        self.commands.append(Command(script, is_script=True, use_local_scope=use_local_scope))
        return self

    def add_command(self, name: str, use_local_scope: bool | None = None) -> "PowerShell":
        self.commands.append(Command(name, is_script=False, use_local_scope=use_local_scope))
        return self

    def add_parameter(self, name: str, value: Any = True) -> "PowerShell":
        """A named parameter; ``value=True`` (the default) for a switch."""
        if not self.commands:
            raise ValueError("add a command before its parameters")
        self.commands[-1].add_parameter(name, value)
        return self

    def add_parameters(self, parameters: dict) -> "PowerShell":
        for k, v in parameters.items():
            self.add_parameter(k, v)
        return self

    def add_argument(self, value: Any) -> "PowerShell":
        if not self.commands:
            raise ValueError("add a command before its arguments")
        self.commands[-1].add_argument(value)
        return self

    def merge_error_to_output(self) -> "PowerShell":
        """``2>&1`` on the last command."""
        c = self.commands[-1]
        c.merge_my_result = m.PipelineResultTypes.ERROR
        c.merge_to_result = m.PipelineResultTypes.OUTPUT
        c.merge_error = m.PipelineResultTypes.OUTPUT
        return self

    def expect_input(self) -> "PowerShell":
        """Send NoInput=false even when begin_invoke gets no input yet."""
        self._expect_input = True
        return self

    # -- state -------------------------------------------------------------------

    @property
    def had_errors(self) -> bool:
        return self.state == PSInvocationState.FAILED or bool(self.streams.error)

    @property
    def finished(self) -> bool:
        return isinstance(self.state, PSInvocationState) and self.state.terminal

    def _create_data(self) -> tuple[int, str]:
        if self._create is not None:
            return self._create
        no_input = not self._expect_input
        # Without a host the pipeline must not fall back to the pool's host
        # either (useRunspaceHost false), or host calls would still come.
        host_info = self.host.host_info() if self.host else HostInfo(use_runspace_host=False)
        return (MessageType.CREATE_PIPELINE, m.create_pipeline(
            self.commands, no_input=no_input, apartment_state=self.apartment_state,
            remote_stream_options=self.remote_stream_options,
            add_to_history=self.add_to_history, host_info=host_info,
            is_nested=self.is_nested, protocol_version=self.pool.protocol_version))

    # -- running -----------------------------------------------------------------

    def begin_invoke(self, input: Iterable | None = None, *, end_input: bool = True) -> None:
        """Start the pipeline.  ``input`` values are sent as PIPELINE_INPUT;
        END_OF_PIPELINE_INPUT follows unless ``end_input`` is False."""
        self.pool._check_opened()
        if self.state == PSInvocationState.RUNNING:
            raise PipelineError("the pipeline is already running")
        if self._create is None and not self.commands:
            raise PipelineError("no commands to run")
        if self._lane_open:
            self.close()
        if input is not None:
            self._expect_input = True
        self.output = []
        self.streams.clear()
        self.invocation_error = None
        self.command_state = None
        self.stop_requested = False
        mtype, data = self._create_data()
        self.pool.pipelines[self.pid] = self
        self.pool._defrag[self.pid] = Defragmenter()
        payloads = self.pool._payloads([self.pool._message(mtype, data, self.pid)])
        self.state = PSInvocationState.RUNNING
        self.pool.transport.create_pipeline(self.pid, payloads[0])
        self._lane_open = True
        for p in payloads[1:]:
            self.pool.transport.send(self.pid, p)
        if input is not None:
            self.send_input(input, end=end_input)
        elif self._expect_input and end_input:
            self.end_input()

    def send_input(self, values: Iterable, end: bool = False) -> None:
        msgs = [self.pool._message(MessageType.PIPELINE_INPUT, m.pipeline_input(v), self.pid)
                for v in values]
        if end:
            msgs.append(self.pool._message(MessageType.END_OF_PIPELINE_INPUT, b"", self.pid))
        for p in self.pool._payloads(msgs):
            self.pool.transport.send(self.pid, p)

    def end_input(self) -> None:
        self.send_input([], end=True)

    def poll_invoke(self, timeout: float = 1.0) -> bool:
        """Receive once; returns True when the pipeline reached a terminal state."""
        if self.finished:
            return True
        res = self.pool.transport.receive(self.pid, timeout)
        if res.command_state:
            self.command_state = res.command_state
        for msg in self.pool._decode(self.pid, res.payloads):
            self._process_message(msg)
        if res.closed and not self.finished:
            self.state = PSInvocationState.FAILED
            self.invocation_error = m.ErrorRecord(
                "the transport closed before the pipeline finished", "TransportClosed", None)
        if self.finished:
            self._after_terminal()
            return True
        return False

    def end_invoke(self, timeout: float = 60.0) -> list:
        deadline = time.monotonic() + timeout
        while not self.poll_invoke(min(5.0, max(deadline - time.monotonic(), 0.0))):
            if time.monotonic() >= deadline:
                raise TimeoutError("pipeline %s did not finish within %.1fs"
                                   % (self.pid, timeout))
        return self.output

    def invoke(self, input: Iterable | None = None, timeout: float = 60.0) -> list:
        self.begin_invoke(input)
        return self.end_invoke(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to stop the pipeline and wait for it to end.

        pwsh's stdio server closes the pipeline's transport on a stop signal
        and may never send PIPELINE_STATE; if nothing arrives within a short
        grace period after the signal was acknowledged, the state becomes
        Stopped locally (as PowerShell's own client does).
        """
        if self.finished or self.state == PSInvocationState.NOT_STARTED:
            return
        self.stop_requested = True
        self.state = PSInvocationState.STOPPING
        self.pool.transport.stop_pipeline(self.pid)
        deadline = time.monotonic() + timeout
        grace = time.monotonic() + min(timeout, getattr(self.pool.transport,
                                                        "stop_grace", timeout))
        while not self.finished:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError("pipeline %s did not stop within %.1fs" % (self.pid, timeout))
            if now >= grace:
                self.state = PSInvocationState.STOPPED
                self.invocation_error = self.invocation_error or m.ErrorRecord(
                    "The pipeline has been stopped.", "PipelineStopped",
                    m.ErrorCategory.OPERATION_STOPPED)
                break
            self.poll_invoke(min(1.0, deadline - now, max(grace - now, 0.05)))
        self._after_terminal()

    def close(self) -> None:
        """Release the pipeline on the server (OOP Close / WSMan Terminate)."""
        if self._lane_open:
            self._lane_open = False
            try:
                self.pool.transport.close_pipeline(self.pid)
            finally:
                self.pool.pipelines.pop(self.pid, None)

    def _after_terminal(self) -> None:
        if self.auto_close and self._lane_open:
            self.close()

    # -- message handling -----------------------------------------------------------

    def _process_message(self, msg: Message) -> None:
        self.received.append(msg)
        mt = msg.message_type
        parsed = m.parse_message(msg)
        if mt == MessageType.PIPELINE_OUTPUT:
            self.output.append(parsed.value)
        elif mt == MessageType.ERROR_RECORD:
            self.streams.error.append(parsed)
        elif mt == MessageType.WARNING_RECORD:
            self.streams.warning.append(parsed)
        elif mt == MessageType.VERBOSE_RECORD:
            self.streams.verbose.append(parsed)
        elif mt == MessageType.DEBUG_RECORD:
            self.streams.debug.append(parsed)
        elif mt == MessageType.INFORMATION_RECORD:
            self.streams.information.append(parsed)
        elif mt == MessageType.PROGRESS_RECORD:
            self.streams.progress.append(parsed)
        elif mt == MessageType.PIPELINE_STATE:
            self.state = parsed.state
            if parsed.error is not None:
                self.invocation_error = parsed.error
        elif mt == MessageType.PIPELINE_HOST_CALL:
            self.host_calls.append(parsed)
            self.pool._answer_host_call(parsed, self.pid, MessageType.PIPELINE_HOST_RESPONSE,
                                        self.host)
        else:
            log.debug("unexpected pipeline message %s", msg.type_name)
