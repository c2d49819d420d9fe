"""The transport interface the PSRP client state machines run on.

A transport moves opaque payloads (bytes holding one or more whole PSRP
fragments) between the client and one server-side runspace pool.  It knows
nothing about CLIXML; the only PSRP knowledge it may use is the fragment and
message headers (e.g. to route data or to notice the end of a pipeline).

Lanes: ``pid=None`` is the runspace pool; any other UUID is a pipeline.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


class TransportError(Exception):
    """The transport failed (process died, HTTP failure, protocol breach)."""


class TransportTimeout(TransportError):
    """An operation on the transport did not finish in time."""


@dataclass
class ReceiveResult:
    """What one receive call produced."""
    payloads: list[bytes] = field(default_factory=list)
    # WSMan: CommandState of the pipeline ("Done", "Running", "Pending", ...)
    command_state: str | None = None
    exit_code: int | None = None
    # True when the lane can never produce more data (pwsh exited, shell gone).
    closed: bool = False


class PSRPTransport:
    """Base class; see OutOfProcTransport and WSManTransport."""

    #: Largest fragment (header included) the client should build.
    max_fragment_size: int = 32768
    #: Largest number of fragment bytes to put in one send/command payload.
    max_payload_size: int = 32768
    #: Whether disconnect/reconnect/connect are available.
    supports_disconnect: bool = False

    def open_pool(self, rpid: uuid.UUID, payload: bytes) -> None:
        """Create the server pool, handing it the opening fragments
        (SESSION_CAPABILITY + INIT_RUNSPACEPOOL)."""
        raise NotImplementedError

    def send(self, pid: uuid.UUID | None, payload: bytes, *, stream: str = "stdin") -> None:
        """Deliver fragments to the pool or to a pipeline.  ``stream`` is
        ``"stdin"`` or ``"pr"`` (host-call responses)."""
        raise NotImplementedError

    def create_pipeline(self, pid: uuid.UUID, payload: bytes) -> None:
        """Create a pipeline lane and deliver its first fragments."""
        raise NotImplementedError

    def receive(self, pid: uuid.UUID | None, timeout: float) -> ReceiveResult:
        """Wait up to ``timeout`` seconds for data on a lane."""
        raise NotImplementedError

    def stop_pipeline(self, pid: uuid.UUID) -> None:
        raise NotImplementedError

    def close_pipeline(self, pid: uuid.UUID) -> None:
        raise NotImplementedError

    def close_pool(self, timeout: float = 30.0) -> None:
        """Close every pipeline lane still open, then the pool itself."""
        raise NotImplementedError

    # Hooks ---------------------------------------------------------------

    def server_capability(self, protocol_version) -> None:
        """Called once the server's SESSION_CAPABILITY arrived."""

    def disconnect(self, **kwargs) -> None:
        raise TransportError("this transport cannot disconnect")

    def reconnect(self, **kwargs) -> None:
        raise TransportError("this transport cannot reconnect")

    def connect(self, rpid: uuid.UUID, payload: bytes) -> bytes:
        raise TransportError("this transport cannot connect")

    def connect_pipeline(self, pid: uuid.UUID) -> None:
        raise TransportError("this transport cannot connect")

    def close(self) -> None:
        """Release local resources (processes, connections)."""
