"""Builders for client→server PSRP message data and parsers for server→client
messages (MS-PSRP 2.2.2, 2.2.3).

Builders return the CLIXML text of the message's Data field (``str``);
``build_message`` wraps it in a :class:`~.fragments.Message`.  ``parse_message``
turns a received :class:`~.fragments.Message` into one of the dataclasses
below (or, for PIPELINE_OUTPUT / PIPELINE_INPUT, the deserialized object).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .clixml import (PSDict, PSInt64, PSList, PSObject, PSVersion, ps_enum,
                     serialize, deserialize)
from .fragments import NIL_UUID, Destination, Message, MessageType

__all__ = [
    "RunspacePoolState", "PSInvocationState", "PSThreadOptions", "ApartmentState",
    "RemoteStreamOptions", "PipelineResultTypes", "CommandTypes", "ErrorCategory",
    "HostMethod", "VOID_HOST_METHODS", "Color", "Coordinates", "Size",
    "HostDefaultData", "HostInfo", "CommandParameter", "Command",
    "build_message",
    "session_capability", "init_runspace_pool", "connect_runspace_pool",
    "create_pipeline", "get_command_metadata", "set_max_runspaces",
    "set_min_runspaces", "get_available_runspaces", "reset_runspace_state",
    "pipeline_input", "end_of_pipeline_input", "host_response", "public_key",
    "error_record_object",
    "SessionCapability", "ApplicationPrivateData", "RunspacePoolStateInfo",
    "RunspaceAvailability", "RunspacePoolInitData", "ErrorRecord",
    "InformationalRecord", "InformationRecord", "ProgressRecord",
    "PipelineStateInfo", "HostCall", "EncryptedSessionKey", "PublicKeyRequest",
    "UserEvent", "PipelineOutput", "parse_message", "parse_error_record",
]


# ---------------------------------------------------------------------------
# Enumerations (MS-PSRP 2.2.3)
# ---------------------------------------------------------------------------

class RunspacePoolState(enum.IntEnum):
    BEFORE_OPEN = 0
    OPENING = 1
    OPENED = 2
    CLOSED = 3
    CLOSING = 4
    BROKEN = 5
    NEGOTIATION_SENT = 6
    NEGOTIATION_SUCCEEDED = 7
    CONNECTING = 8
    DISCONNECTED = 9


class PSInvocationState(enum.IntEnum):
    NOT_STARTED = 0
    RUNNING = 1
    STOPPING = 2
    STOPPED = 3
    COMPLETED = 4
    FAILED = 5
    DISCONNECTED = 6

    @property
    def terminal(self) -> bool:
        return self in (PSInvocationState.STOPPED, PSInvocationState.COMPLETED,
                        PSInvocationState.FAILED)


class PSThreadOptions(enum.IntEnum):
    DEFAULT = 0
    USE_NEW_THREAD = 1
    REUSE_THREAD = 2
    USE_CURRENT_THREAD = 3


class ApartmentState(enum.IntEnum):
    STA = 0
    MTA = 1
    UNKNOWN = 2


class RemoteStreamOptions(enum.IntFlag):
    NONE = 0
    ADD_INVOCATION_INFO_TO_ERROR_RECORD = 1
    ADD_INVOCATION_INFO_TO_WARNING_RECORD = 2
    ADD_INVOCATION_INFO_TO_DEBUG_RECORD = 4
    ADD_INVOCATION_INFO_TO_VERBOSE_RECORD = 8
    ADD_INVOCATION_INFO = 15


class PipelineResultTypes(enum.IntFlag):
    NONE = 0
    OUTPUT = 1
    ERROR = 2
    WARNING = 3
    VERBOSE = 4
    DEBUG = 5
    INFORMATION = 6
    ALL = 7
    NULL = 8


# .NET names of the PipelineResultTypes values above (used for ToString).
_RESULT_TYPE_NAMES = {0: "None", 1: "Output", 2: "Error", 3: "Warning", 4: "Verbose",
                      5: "Debug", 6: "Information", 7: "All", 8: "Null"}


class CommandTypes(enum.IntFlag):
    ALIAS = 1
    FUNCTION = 2
    FILTER = 4
    CMDLET = 8
    EXTERNAL_SCRIPT = 16
    APPLICATION = 32
    SCRIPT = 64
    CONFIGURATION = 256
    ALL = 383


class ErrorCategory(enum.IntEnum):
    NOT_SPECIFIED = 0
    OPEN_ERROR = 1
    CLOSE_ERROR = 2
    DEVICE_ERROR = 3
    DEADLOCK_DETECTED = 4
    INVALID_ARGUMENT = 5
    INVALID_DATA = 6
    INVALID_OPERATION = 7
    INVALID_RESULT = 8
    INVALID_TYPE = 9
    METADATA_ERROR = 10
    NOT_IMPLEMENTED = 11
    NOT_INSTALLED = 12
    OBJECT_NOT_FOUND = 13
    OPERATION_STOPPED = 14
    OPERATION_TIMEOUT = 15
    SYNTAX_ERROR = 16
    PARSER_ERROR = 17
    PERMISSION_DENIED = 18
    RESOURCE_BUSY = 19
    RESOURCE_EXISTS = 20
    RESOURCE_UNAVAILABLE = 21
    READ_ERROR = 22
    WRITE_ERROR = 23
    FROM_STD_ERR = 24
    SECURITY_ERROR = 25
    PROTOCOL_ERROR = 26
    CONNECTION_ERROR = 27
    AUTHENTICATION_ERROR = 28
    LIMITS_EXCEEDED = 29
    QUOTA_EXCEEDED = 30
    NOT_ENABLED = 31


class HostMethod(enum.IntEnum):
    """Host method identifiers (MS-PSRP 2.2.3.17); names are the .NET names."""
    GetName = 1
    GetVersion = 2
    GetInstanceId = 3
    GetCurrentCulture = 4
    GetCurrentUICulture = 5
    SetShouldExit = 6
    EnterNestedPrompt = 7
    ExitNestedPrompt = 8
    NotifyBeginApplication = 9
    NotifyEndApplication = 10
    ReadLine = 11
    ReadLineAsSecureString = 12
    Write1 = 13
    Write2 = 14
    WriteLine1 = 15
    WriteLine2 = 16
    WriteLine3 = 17
    WriteErrorLine = 18
    WriteDebugLine = 19
    WriteProgress = 20
    WriteVerboseLine = 21
    WriteWarningLine = 22
    Prompt = 23
    PromptForCredential1 = 24
    PromptForCredential2 = 25
    PromptForChoice = 26
    GetForegroundColor = 27
    SetForegroundColor = 28
    GetBackgroundColor = 29
    SetBackgroundColor = 30
    GetCursorPosition = 31
    SetCursorPosition = 32
    GetWindowPosition = 33
    SetWindowPosition = 34
    GetCursorSize = 35
    SetCursorSize = 36
    GetBufferSize = 37
    SetBufferSize = 38
    GetWindowSize = 39
    SetWindowSize = 40
    GetWindowTitle = 41
    SetWindowTitle = 42
    GetMaxWindowSize = 43
    GetMaxPhysicalWindowSize = 44
    GetKeyAvailable = 45
    ReadKey = 46
    FlushInputBuffer = 47
    SetBufferContents1 = 48
    SetBufferContents2 = 49
    GetBufferContents = 50
    ScrollBufferContents = 51
    PushRunspace = 52
    PopRunspace = 53
    GetIsRunspacePushed = 54
    GetRunspace = 55
    PromptForChoiceMultipleSelection = 56
    # PowerShell 7 addition, not in MS-PSRP's table.
    WriteInformation = 57


# Methods that return nothing: the client MUST NOT send a response for them.
VOID_HOST_METHODS = frozenset({
    HostMethod.SetShouldExit, HostMethod.EnterNestedPrompt, HostMethod.ExitNestedPrompt,
    HostMethod.NotifyBeginApplication, HostMethod.NotifyEndApplication,
    HostMethod.Write1, HostMethod.Write2, HostMethod.WriteLine1, HostMethod.WriteLine2,
    HostMethod.WriteLine3, HostMethod.WriteErrorLine, HostMethod.WriteDebugLine,
    HostMethod.WriteProgress, HostMethod.WriteVerboseLine, HostMethod.WriteWarningLine,
    HostMethod.SetForegroundColor, HostMethod.SetBackgroundColor,
    HostMethod.SetCursorPosition, HostMethod.SetWindowPosition, HostMethod.SetCursorSize,
    HostMethod.SetBufferSize, HostMethod.SetWindowSize, HostMethod.SetWindowTitle,
    HostMethod.FlushInputBuffer, HostMethod.SetBufferContents1,
    HostMethod.SetBufferContents2, HostMethod.ScrollBufferContents,
    HostMethod.PushRunspace, HostMethod.PopRunspace, HostMethod.WriteInformation,
})

_TN_THREAD_OPTIONS = "System.Management.Automation.Runspaces.PSThreadOptions"
_TN_APARTMENT = "System.Management.Automation.Runspaces.ApartmentState"
_TN_STREAM_OPTIONS = "System.Management.Automation.Runspaces.RemoteStreamOptions"
_TN_RESULT_TYPES = "System.Management.Automation.Runspaces.PipelineResultTypes"
_TN_HOST_METHOD = "System.Management.Automation.Remoting.RemoteHostMethodId"
_TN_COMMAND_TYPES = "System.Management.Automation.CommandTypes"
_TN_PSOBJECT_LIST = ("System.Collections.Generic.List`1[[System.Management.Automation.PSObject, "
                     "System.Management.Automation, Version=1.0.0.0, Culture=neutral, "
                     "PublicKeyToken=31bf3856ad364e35]]")
_TN_STRING_ARRAY = ["System.String[]", "System.Array", "System.Object"]
_TN_HASHTABLE = ["System.Collections.Hashtable", "System.Object"]
_TN_PRIMITIVE_DICT = ["System.Management.Automation.PSPrimitiveDictionary",
                      "System.Collections.Hashtable", "System.Object"]

_APARTMENT_NAMES = {0: "STA", 1: "MTA", 2: "Unknown"}
_THREAD_OPTION_NAMES = {0: "Default", 1: "UseNewThread", 2: "ReuseThread", 3: "UseCurrentThread"}


def _stream_options_name(value: int) -> str:
    if value == 0:
        return "None"
    if value == 15:
        return "AddInvocationInfo"
    names = [n for bit, n in ((1, "AddInvocationInfoToErrorRecord"),
                              (2, "AddInvocationInfoToWarningRecord"),
                              (4, "AddInvocationInfoToDebugRecord"),
                              (8, "AddInvocationInfoToVerboseRecord")) if value & bit]
    return ", ".join(names)


def _command_types_name(value: int) -> str:
    if value == int(CommandTypes.ALL):
        return "All"
    names = [m.name.title().replace("_", "") for m in CommandTypes
             if m is not CommandTypes.ALL and value & int(m)]
    return ", ".join(names) or "0"


# ---------------------------------------------------------------------------
# Host information (MS-PSRP 2.2.3.14)
# ---------------------------------------------------------------------------

@dataclass
class Coordinates:
    x: int = 0
    y: int = 0

    def to_psobject(self) -> PSObject:
        return PSObject(extended_properties={"x": int(self.x), "y": int(self.y)})


@dataclass
class Size:
    width: int = 0
    height: int = 0

    def to_psobject(self) -> PSObject:
        return PSObject(extended_properties={"width": int(self.width),
                                             "height": int(self.height)})


class Color(enum.IntEnum):
    """System.ConsoleColor."""
    Black = 0
    DarkBlue = 1
    DarkGreen = 2
    DarkCyan = 3
    DarkRed = 4
    DarkMagenta = 5
    DarkYellow = 6
    Gray = 7
    DarkGray = 8
    Blue = 9
    Green = 10
    Cyan = 11
    Red = 12
    Magenta = 13
    Yellow = 14
    White = 15


@dataclass
class HostDefaultData:
    """The ``_hostDefaultData`` block of HostInfo (keys 0..9 of the table)."""
    foreground_color: int = Color.Gray
    background_color: int = Color.Black
    cursor_position: Coordinates = field(default_factory=Coordinates)
    window_position: Coordinates = field(default_factory=Coordinates)
    cursor_size: int = 25
    buffer_size: Size = field(default_factory=lambda: Size(120, 3000))
    window_size: Size = field(default_factory=lambda: Size(120, 50))
    max_window_size: Size = field(default_factory=lambda: Size(120, 50))
    max_physical_window_size: Size = field(default_factory=lambda: Size(240, 100))
    window_title: str = "winrmd test client"

    def to_psobject(self) -> PSObject:
        def entry(type_name: str, value) -> PSObject:
            return PSObject(extended_properties={"T": type_name, "V": value})

        data = PSDict({
            0: entry("System.ConsoleColor", int(self.foreground_color)),
            1: entry("System.ConsoleColor", int(self.background_color)),
            2: entry("System.Management.Automation.Host.Coordinates",
                     self.cursor_position.to_psobject()),
            3: entry("System.Management.Automation.Host.Coordinates",
                     self.window_position.to_psobject()),
            4: entry("System.Int32", int(self.cursor_size)),
            5: entry("System.Management.Automation.Host.Size", self.buffer_size.to_psobject()),
            6: entry("System.Management.Automation.Host.Size", self.window_size.to_psobject()),
            7: entry("System.Management.Automation.Host.Size", self.max_window_size.to_psobject()),
            8: entry("System.Management.Automation.Host.Size",
                     self.max_physical_window_size.to_psobject()),
            9: entry("System.String", self.window_title),
        }, type_names=_TN_HASHTABLE)
        return PSObject(extended_properties={"data": data})


@dataclass
class HostInfo:
    """HostInfo: which parts of the client host exist.

    The default (everything null, use the runspace host) is what a client
    without a host sends.
    """
    is_host_null: bool = True
    is_host_ui_null: bool = True
    is_host_raw_ui_null: bool = True
    use_runspace_host: bool = True
    default_data: HostDefaultData | None = None

    @classmethod
    def with_host(cls, raw_ui: bool = False, use_runspace_host: bool = False,
                  default_data: HostDefaultData | None = None) -> "HostInfo":
        if raw_ui and default_data is None:
            default_data = HostDefaultData()
        return cls(False, False, not raw_ui, use_runspace_host, default_data)

    def to_psobject(self) -> PSObject:
        props: dict[str, Any] = {}
        if self.default_data is not None:
            props["_hostDefaultData"] = self.default_data.to_psobject()
        props["_isHostNull"] = bool(self.is_host_null)
        props["_isHostUINull"] = bool(self.is_host_ui_null)
        props["_isHostRawUINull"] = bool(self.is_host_raw_ui_null)
        props["_useRunspaceHost"] = bool(self.use_runspace_host)
        return PSObject(extended_properties=props)


# ---------------------------------------------------------------------------
# Commands (MS-PSRP 2.2.3.11 - 2.2.3.13)
# ---------------------------------------------------------------------------

@dataclass
class CommandParameter:
    name: str | None
    value: Any = None

    def to_psobject(self) -> PSObject:
        return PSObject(extended_properties={"N": self.name, "V": self.value})


@dataclass
class Command:
    """One command of a pipeline.  Merge fields take PipelineResultTypes values."""
    cmd: str
    is_script: bool = False
    use_local_scope: bool | None = None
    parameters: list[CommandParameter] = field(default_factory=list)
    merge_my_result: int = 0
    merge_to_result: int = 0
    merge_previous: int = 0
    merge_error: int = 0
    merge_warning: int = 0
    merge_verbose: int = 0
    merge_debug: int = 0
    merge_information: int = 0

    def add_parameter(self, name: str | None, value: Any = None) -> "Command":
        self.parameters.append(CommandParameter(name, value))
        return self

    def add_argument(self, value: Any) -> "Command":
        return self.add_parameter(None, value)

    def to_psobject(self, protocol_version: PSVersion | None = None) -> PSObject:
        def rt(v: int) -> PSObject:
            return ps_enum(_TN_RESULT_TYPES, _RESULT_TYPE_NAMES.get(int(v), str(int(v))), int(v))

        props: dict[str, Any] = {
            "Cmd": self.cmd,
            "IsScript": bool(self.is_script),
            "UseLocalScope": self.use_local_scope,
            "MergeMyResult": rt(self.merge_my_result),
            "MergeToResult": rt(self.merge_to_result),
            "MergePreviousResults": rt(self.merge_previous),
            "Args": PSList([p.to_psobject() for p in self.parameters],
                           type_names=[_TN_PSOBJECT_LIST, "System.Object"]),
            "MergeError": rt(self.merge_error),
            "MergeWarning": rt(self.merge_warning),
            "MergeVerbose": rt(self.merge_verbose),
            "MergeDebug": rt(self.merge_debug),
        }
        if protocol_version is None or protocol_version >= PSVersion(2, 3):
            props["MergeInformation"] = rt(self.merge_information)
        return PSObject(extended_properties=props)


# ---------------------------------------------------------------------------
# Builders (client → server)
# ---------------------------------------------------------------------------

def build_message(message_type: int, data: str | bytes, rpid: uuid.UUID,
                  pid: uuid.UUID | None = None,
                  destination: int = Destination.SERVER) -> Message:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return Message(destination, int(message_type), rpid, pid or NIL_UUID, raw)


def session_capability(protocol_version: str = "2.3", ps_version: str = "2.0",
                       serialization_version: str = "1.1.0.1",
                       time_zone: bytes | None = None) -> str:
    props: dict[str, Any] = {
        "protocolversion": PSVersion(protocol_version),
        "PSVersion": PSVersion(ps_version),
        "SerializationVersion": PSVersion(serialization_version),
    }
    if time_zone is not None:
        props["TimeZone"] = bytes(time_zone)
    return serialize(PSObject(extended_properties=props))


def _primitive_dictionary(values: dict | None):
    if values is None:
        return None
    if isinstance(values, PSDict) and values.type_names:
        return values
    return PSDict({k: (_primitive_dictionary(v) if isinstance(v, dict) else v)
                   for k, v in values.items()}, type_names=_TN_PRIMITIVE_DICT)


def init_runspace_pool(min_runspaces: int = 1, max_runspaces: int = 1,
                       thread_options: int = PSThreadOptions.DEFAULT,
                       apartment_state: int = ApartmentState.UNKNOWN,
                       host_info: HostInfo | None = None,
                       application_arguments: dict | None = None) -> str:
    props = {
        "MinRunspaces": int(min_runspaces),
        "MaxRunspaces": int(max_runspaces),
        "PSThreadOptions": ps_enum(_TN_THREAD_OPTIONS,
                                   _THREAD_OPTION_NAMES.get(int(thread_options), "Default"),
                                   int(thread_options)),
        "ApartmentState": ps_enum(_TN_APARTMENT,
                                  _APARTMENT_NAMES.get(int(apartment_state), "Unknown"),
                                  int(apartment_state)),
        "HostInfo": (host_info or HostInfo()).to_psobject(),
        "ApplicationArguments": _primitive_dictionary(application_arguments),
    }
    return serialize(PSObject(extended_properties=props))


def connect_runspace_pool(min_runspaces: int | None = None,
                          max_runspaces: int | None = None) -> str:
    # PowerShell's client sends an empty string (``<S />``) when it does not
    # know the counts; MS-PSRP's example wraps it in an object instead.
    if min_runspaces is None and max_runspaces is None:
        return serialize("")
    props = {}
    if min_runspaces is not None:
        props["MinRunspaces"] = int(min_runspaces)
    if max_runspaces is not None:
        props["MaxRunspaces"] = int(max_runspaces)
    return serialize(PSObject(extended_properties=props))


def create_pipeline(commands: Sequence[Command], *, no_input: bool = True,
                    apartment_state: int = ApartmentState.UNKNOWN,
                    remote_stream_options: int = RemoteStreamOptions.ADD_INVOCATION_INFO,
                    add_to_history: bool = False, host_info: HostInfo | None = None,
                    is_nested: bool = False, history: str | None = None,
                    redirect_shell_error_output_pipe: bool = False,
                    protocol_version: PSVersion | None = None) -> str:
    """CREATE_PIPELINE data.

    ``commands`` is a list of :class:`Command`; a command with ``cmd`` ``None``
    is not allowed.  Commands separated into statements are not supported
    here (``ExtraCmds`` is always Nil): one pipeline per message.
    """
    if not commands:
        raise ValueError("a pipeline needs at least one command")
    powershell = PSObject(extended_properties={
        "IsNested": bool(is_nested),
        "ExtraCmds": None,
        "Cmds": PSList([c.to_psobject(protocol_version) for c in commands],
                       type_names=[_TN_PSOBJECT_LIST, "System.Object"]),
        "History": history,
        "RedirectShellErrorOutputPipe": bool(redirect_shell_error_output_pipe),
    })
    props = {
        "NoInput": bool(no_input),
        "ApartmentState": ps_enum(_TN_APARTMENT,
                                  _APARTMENT_NAMES.get(int(apartment_state), "Unknown"),
                                  int(apartment_state)),
        "RemoteStreamOptions": ps_enum(_TN_STREAM_OPTIONS,
                                       _stream_options_name(int(remote_stream_options)),
                                       int(remote_stream_options)),
        "AddToHistory": bool(add_to_history),
        "HostInfo": (host_info or HostInfo()).to_psobject(),
        "PowerShell": powershell,
        "IsNested": bool(is_nested),
    }
    return serialize(PSObject(extended_properties=props))


def get_command_metadata(names: Iterable[str] | None = ("*",),
                         command_type: int = CommandTypes.ALL,
                         namespace: Iterable[str] | None = None,
                         argument_list: Iterable | None = None) -> str:
    props = {
        "Name": None if names is None else PSList(list(names), type_names=_TN_STRING_ARRAY),
        "CommandType": ps_enum(_TN_COMMAND_TYPES, _command_types_name(int(command_type)),
                               int(command_type)),
        "Namespace": None if namespace is None else PSList(list(namespace),
                                                             type_names=_TN_STRING_ARRAY),
        "ArgumentList": None if argument_list is None else list(argument_list),
    }
    return serialize(PSObject(extended_properties=props))


def set_max_runspaces(ci: int, max_runspaces: int) -> str:
    return serialize(PSObject(extended_properties={"MaxRunspaces": int(max_runspaces),
                                                   "ci": PSInt64(ci)}))


def set_min_runspaces(ci: int, min_runspaces: int) -> str:
    return serialize(PSObject(extended_properties={"MinRunspaces": int(min_runspaces),
                                                   "ci": PSInt64(ci)}))


def get_available_runspaces(ci: int) -> str:
    return serialize(PSObject(extended_properties={"ci": PSInt64(ci)}))


def reset_runspace_state(ci: int) -> str:
    return serialize(PSObject(extended_properties={"ci": PSInt64(ci)}))


def pipeline_input(value: Any) -> str | bytes:
    """PIPELINE_INPUT data.  PowerShell sends a null object as empty data;
    pwsh's server rejects ``<Nil />`` here (the pipeline never finishes)."""
    return b"" if value is None else serialize(value)


def end_of_pipeline_input() -> bytes:
    return b""


def public_key(key_blob_b64: str) -> str:
    return serialize(PSObject(extended_properties={"PublicKey": key_blob_b64}))


def error_record_object(message: str, *, exception_type: str = "System.Exception",
                        fully_qualified_error_id: str = "RemoteHostExecutionException",
                        category: int = ErrorCategory.NOT_SPECIFIED,
                        reason: str | None = None) -> PSObject:
    """An ErrorRecord in the shape PowerShell sends it for remoting."""
    short_type = exception_type.rsplit(".", 1)[-1]
    exc = PSObject(type_names=[exception_type, "System.Exception", "System.Object"]
                   if exception_type != "System.Exception" else ["System.Exception", "System.Object"],
                   to_string="%s: %s" % (exception_type, message),
                   adapted_properties={"Message": message, "Data": PSDict(
                       type_names=["System.Collections.ListDictionaryInternal", "System.Object"]),
                       "InnerException": None, "TargetSite": None, "StackTrace": None,
                       "HelpLink": None, "Source": None, "HResult": -2146233088})
    cat_name = ErrorCategory(category).name.title().replace("_", "") \
        if int(category) in ErrorCategory._value2member_map_ else "NotSpecified"
    reason = reason or short_type
    props = {
        "Exception": exc,
        "TargetObject": None,
        "FullyQualifiedErrorId": fully_qualified_error_id,
        "InvocationInfo": None,
        "ErrorCategory_Category": int(category),
        "ErrorCategory_Activity": "",
        "ErrorCategory_Reason": reason,
        "ErrorCategory_TargetName": "",
        "ErrorCategory_TargetType": "",
        "ErrorCategory_Message": "%s: (:) [], %s" % (cat_name, reason),
        "SerializeExtendedInfo": False,
    }
    return PSObject(type_names=["System.Management.Automation.ErrorRecord", "System.Object"],
                    to_string=message, extended_properties=props)


_NO_RESULT = object()


def host_response(ci: int, method: int, result: Any = _NO_RESULT,
                  error: PSObject | str | None = None) -> str:
    """PIPELINE_HOST_RESPONSE / RUNSPACEPOOL_HOST_RESPONSE data.

    Give ``result`` (the ``mr`` value) or ``error`` (an ErrorRecord object or
    a message, sent as ``me``).
    """
    mid = int(method)
    try:
        name = HostMethod(mid).name
    except ValueError:
        name = str(mid)
    props: dict[str, Any] = {"ci": PSInt64(ci),
                             "mi": ps_enum(_TN_HOST_METHOD, name, mid)}
    if error is not None:
        if isinstance(error, str):
            error = error_record_object(error)
        props["me"] = error
    elif result is not _NO_RESULT and result is not None:
        # PowerShell leaves ``mr`` out for a null return value.
        props["mr"] = result
    return serialize(PSObject(extended_properties=props))


# ---------------------------------------------------------------------------
# Parsed server → client messages
# ---------------------------------------------------------------------------

def _g(obj, name, default=None):
    if isinstance(obj, PSObject):
        return obj.get(name, default)
    if isinstance(obj, dict):
        return obj.get(name, default)
    return default


def _enum_value(v):
    if isinstance(v, PSObject):
        return v.value
    return v


@dataclass
class SessionCapability:
    protocol_version: PSVersion
    ps_version: PSVersion
    serialization_version: PSVersion
    time_zone: bytes | None = None
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class ApplicationPrivateData:
    data: dict | None
    raw: PSObject | None = field(default=None, repr=False)

    @property
    def ps_version_table(self) -> dict | None:
        return self.data.get("PSVersionTable") if self.data else None


@dataclass
class ErrorRecord:
    message: str
    fully_qualified_error_id: str | None
    category: int | None
    category_reason: str | None = None
    category_activity: str | None = None
    category_target_name: str | None = None
    category_target_type: str | None = None
    category_message: str | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    target_object: Any = None
    recommended_action: str | None = None
    script_stack_trace: str | None = None
    invocation_info: Any = None
    raw: PSObject | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.message


def parse_error_record(obj) -> ErrorRecord | None:
    if obj is None:
        return None
    if not isinstance(obj, PSObject):
        return ErrorRecord(str(obj), None, None, raw=None)
    exc = obj.get("Exception")
    exc_type = exc_msg = None
    if isinstance(exc, PSObject):
        if exc.type_names:
            exc_type = exc.type_names[0]
            if exc_type.startswith("Deserialized."):
                exc_type = exc_type[len("Deserialized."):]
        exc_msg = exc.get("Message")
    elif isinstance(exc, str):
        exc_msg = exc
    message = obj.get("ErrorDetails_Message") or exc_msg or obj.to_string or ""
    cat = obj.get("ErrorCategory_Category")
    inv = obj.get("InvocationInfo")
    if inv is None and obj.get("SerializeExtendedInfo"):
        inv = {k[len("InvocationInfo_"):]: v for k, v in obj.extended_properties.items()
               if k.startswith("InvocationInfo_")}
    return ErrorRecord(
        message=str(message),
        fully_qualified_error_id=obj.get("FullyQualifiedErrorId"),
        category=int(_enum_value(cat)) if cat is not None else None,
        category_reason=obj.get("ErrorCategory_Reason"),
        category_activity=obj.get("ErrorCategory_Activity"),
        category_target_name=obj.get("ErrorCategory_TargetName"),
        category_target_type=obj.get("ErrorCategory_TargetType"),
        category_message=obj.get("ErrorCategory_Message"),
        exception_type=exc_type,
        exception_message=exc_msg,
        target_object=obj.get("TargetObject"),
        recommended_action=obj.get("ErrorDetails_RecommendedAction"),
        script_stack_trace=obj.get("ErrorDetails_ScriptStackTrace"),
        invocation_info=inv,
        raw=obj,
    )


@dataclass
class RunspacePoolStateInfo:
    state: RunspacePoolState | int
    error: ErrorRecord | None = None
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class RunspaceAvailability:
    ci: int
    response: bool | int
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class RunspacePoolInitData:
    min_runspaces: int | None
    max_runspaces: int | None
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class InformationalRecord:
    """WARNING_RECORD, VERBOSE_RECORD or DEBUG_RECORD."""
    kind: str  # "warning" / "verbose" / "debug"
    message: str
    invocation_info: dict | None = None
    raw: PSObject | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.message


@dataclass
class InformationRecord:
    message_data: Any
    source: str | None = None
    time_generated: Any = None
    tags: list | None = None
    user: str | None = None
    computer: str | None = None
    process_id: int | None = None
    raw: PSObject | None = field(default=None, repr=False)

    @property
    def message(self) -> str:
        md = self.message_data
        if isinstance(md, PSObject):
            inner = md.get("Message")
            if inner is not None:
                return str(inner)
        return str(md)

    def __str__(self) -> str:
        return self.message


@dataclass
class ProgressRecord:
    activity: str | None
    activity_id: int | None
    status_description: str | None
    current_operation: str | None
    parent_activity_id: int | None
    percent_complete: int | None
    record_type: int | None
    seconds_remaining: int | None
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class PipelineStateInfo:
    state: PSInvocationState | int
    error: ErrorRecord | None = None
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class HostCall:
    ci: int
    method_id: int
    method_name: str
    parameters: list
    pipeline_id: uuid.UUID | None = None
    raw: PSObject | None = field(default=None, repr=False)

    @property
    def method(self) -> HostMethod | int:
        try:
            return HostMethod(self.method_id)
        except ValueError:
            return self.method_id

    @property
    def expects_response(self) -> bool:
        return self.method not in VOID_HOST_METHODS


@dataclass
class EncryptedSessionKey:
    key: str
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class PublicKeyRequest:
    raw: Any = field(default=None, repr=False)


@dataclass
class UserEvent:
    event_identifier: int | None
    source_identifier: str | None
    time_generated: Any
    sender: Any
    source_args: Any
    message_data: Any
    computer_name: str | None
    runspace_id: Any
    raw: PSObject | None = field(default=None, repr=False)


@dataclass
class PipelineOutput:
    value: Any


def _version(v) -> PSVersion | None:
    if v is None:
        return None
    return v if isinstance(v, PSVersion) else PSVersion(str(v))


def _int(v):
    v = _enum_value(v)
    return None if v is None else int(v)


def _parse_session_capability(obj) -> SessionCapability:
    return SessionCapability(_version(_g(obj, "protocolversion")),
                             _version(_g(obj, "PSVersion")),
                             _version(_g(obj, "SerializationVersion")),
                             _g(obj, "TimeZone"), obj)


def _parse_informational(kind: str):
    def parse(obj):
        msg = _g(obj, "InformationalRecord_Message")
        if msg is None:
            msg = obj.to_string if isinstance(obj, PSObject) else str(obj)
        inv = None
        if isinstance(obj, PSObject) and obj.get("InformationalRecord_SerializeInvocationInfo"):
            inv = {k[len("InvocationInfo_"):]: v for k, v in obj.extended_properties.items()
                   if k.startswith("InvocationInfo_")}
        return InformationalRecord(kind, str(msg or ""), inv, obj if isinstance(obj, PSObject) else None)
    return parse


def _parse_information(obj) -> InformationRecord:
    tags = _g(obj, "Tags")
    return InformationRecord(_g(obj, "MessageData"), _g(obj, "Source"),
                             _g(obj, "TimeGenerated"),
                             list(tags) if tags is not None else None,
                             _g(obj, "User"), _g(obj, "Computer"),
                             _int(_g(obj, "ProcessId")), obj)


def _parse_progress(obj) -> ProgressRecord:
    return ProgressRecord(_g(obj, "Activity"), _int(_g(obj, "ActivityId")),
                          _g(obj, "StatusDescription"), _g(obj, "CurrentOperation"),
                          _int(_g(obj, "ParentActivityId")), _int(_g(obj, "PercentComplete")),
                          _int(_g(obj, "Type")), _int(_g(obj, "SecondsRemaining")), obj)


def _parse_host_call(obj) -> HostCall:
    mi = _g(obj, "mi")
    mid = int(_enum_value(mi))
    name = mi.to_string if isinstance(mi, PSObject) and mi.to_string else None
    if name is None:
        try:
            name = HostMethod(mid).name
        except ValueError:
            name = str(mid)
    mp = _g(obj, "mp")
    return HostCall(int(_g(obj, "ci")), mid, name,
                    list(mp) if mp is not None else [], None, obj)


def _parse_user_event(obj) -> UserEvent:
    p = "PSEventArgs."
    return UserEvent(_int(_g(obj, p + "EventIdentifier")), _g(obj, p + "SourceIdentifier"),
                     _g(obj, p + "TimeGenerated"), _g(obj, p + "Sender"),
                     _g(obj, p + "SourceArgs"), _g(obj, p + "MessageData"),
                     _g(obj, p + "ComputerName"), _g(obj, p + "RunspaceId"), obj)


_PARSERS = {
    MessageType.SESSION_CAPABILITY: _parse_session_capability,
    MessageType.APPLICATION_PRIVATE_DATA:
        lambda o: ApplicationPrivateData(_g(o, "ApplicationPrivateData"), o),
    MessageType.RUNSPACEPOOL_STATE:
        lambda o: RunspacePoolStateInfo(_state(RunspacePoolState, _g(o, "RunspaceState")),
                                        parse_error_record(_g(o, "ExceptionAsErrorRecord")), o),
    MessageType.RUNSPACE_AVAILABILITY:
        lambda o: RunspaceAvailability(int(_g(o, "ci")), _g(o, "SetMinMaxRunspacesResponse"), o),
    MessageType.RUNSPACEPOOL_INIT_DATA:
        lambda o: RunspacePoolInitData(_int(_g(o, "MinRunspaces")),
                                       _int(_g(o, "MaxRunspaces")), o),
    MessageType.ERROR_RECORD: parse_error_record,
    MessageType.PIPELINE_STATE:
        lambda o: PipelineStateInfo(_state(PSInvocationState, _g(o, "PipelineState")),
                                    parse_error_record(_g(o, "ExceptionAsErrorRecord")), o),
    MessageType.WARNING_RECORD: _parse_informational("warning"),
    MessageType.VERBOSE_RECORD: _parse_informational("verbose"),
    MessageType.DEBUG_RECORD: _parse_informational("debug"),
    MessageType.INFORMATION_RECORD: _parse_information,
    MessageType.PROGRESS_RECORD: _parse_progress,
    MessageType.PIPELINE_HOST_CALL: _parse_host_call,
    MessageType.RUNSPACEPOOL_HOST_CALL: _parse_host_call,
    MessageType.ENCRYPTED_SESSION_KEY:
        lambda o: EncryptedSessionKey(_g(o, "EncryptedSessionKey"), o),
    MessageType.PUBLIC_KEY_REQUEST: lambda o: PublicKeyRequest(o),
    MessageType.USER_EVENT: _parse_user_event,
    MessageType.PIPELINE_OUTPUT: PipelineOutput,
}


def _state(enum_cls, value):
    v = _int(value)
    try:
        return enum_cls(v)
    except ValueError:
        return v


def parse_message(message: Message):
    """Parse a server→client message; unknown types give the raw object."""
    if not message.data or message.data == b"\xef\xbb\xbf":
        # pwsh sends a $null pipeline output object as a message with no data.
        if message.message_type == MessageType.PIPELINE_OUTPUT:
            return PipelineOutput(None)
        return None
    obj = deserialize(message.data)
    parser = _PARSERS.get(message.message_type)
    if parser is None:
        return obj
    result = parser(obj)
    if isinstance(result, HostCall) and message.message_type == MessageType.PIPELINE_HOST_CALL:
        result.pipeline_id = message.pid
    return result
