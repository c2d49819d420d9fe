"""Test-side PSRP (PowerShell Remoting Protocol) client.

Layers, bottom up:

* :mod:`.fragments` - 21-byte fragment and 40-byte message headers,
  fragmenter/defragmenter, message type constants.
* :mod:`.clixml` - CLIXML serializer/deserializer (MS-PSRP 2.2.5).
* :mod:`.messages` - builders for client messages, parsers for server ones.
* :mod:`.client` - ``RunspacePool`` / ``PowerShell`` state machines and the
  scriptable ``Host``.
* transports: :class:`.oop.OutOfProcTransport` (``pwsh -s`` over stdio) and
  :class:`.wsman.WSManTransport` (WS-Man shells over python3-winrm).
"""

from .fragments import (FRAGMENT_HEADER_SIZE, MESSAGE_HEADER_SIZE, NIL_UUID, Defragmenter,
                        Destination, Fragment, FragmentError, Fragmenter, Message,
                        MessageType, pack_fragments, unpack_fragments)
from .clixml import (CLIXML_NS, CLIXMLError, Deserializer, PSByte, PSChar, PSDateTime,
                     PSDict, PSInt16, PSInt64, PSList, PSObject, PSPropertySet, PSQueue,
                     PSSByte, PSScriptBlock, PSSecureString, PSSingle, PSStack, PSUInt16,
                     PSUInt32, PSUInt64, PSUri, PSVersion, PSXml, Serializer, decode_string,
                     deserialize, deserialize_objs, encode_string, ps_enum, serialize,
                     serialize_objs)
from . import messages
from .messages import (ApartmentState, Command, CommandParameter, CommandTypes, ErrorCategory,
                       ErrorRecord, HostCall, HostDefaultData, HostInfo, HostMethod,
                       InformationalRecord, InformationRecord, PipelineResultTypes,
                       PipelineStateInfo, ProgressRecord, PSInvocationState, PSThreadOptions,
                       RemoteStreamOptions, RunspacePoolState, SessionCapability,
                       build_message, parse_message)
from .transport import PSRPTransport, ReceiveResult, TransportError, TransportTimeout
from .oop import OutOfProcTransport, find_pwsh
from .wsman import (CommandInfo, ShellInfo, SignalCode, WSManAuthError, WSManFault,
                    WSManHTTPError, WSManTransport, parse_fault)
from .client import (Host, HostMethodError, PipelineError, PowerShell, PSRPError,
                     RunspacePool, RunspacePoolError, Streams)

__all__ = [n for n in dir() if not n.startswith("_")]
