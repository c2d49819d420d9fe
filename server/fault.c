#include "config.h"

#include <stddef.h>

#include "fault.h"
#include "ns.h"
#include "plugin-codes.h"

/*
 * Texts are the ones Windows sends (clients and people match on them; Go
 * retries a Receive only when the body contains "OperationTimeout"), with
 * Windows' trailing spaces.
 */
#define T_SELECTORS "The WS-Management service cannot process the request " \
	"because the request contained invalid selectors for the resource. "
#define T_TIMEOUT "The WS-Management service cannot complete the operation " \
	"within the time specified in OperationTimeout.  "
#define T_BAD_HEADER "The WS-Management service cannot process the " \
	"request. The request contains one or more invalid SOAP headers. "
#define T_PARAM "The parameter is incorrect. "
#define T_CMD_PROVIDER "Shell cmd plugin"
#define T_CMD_PATH "%systemroot%\\system32\\winrscmd.dll"

static const struct wrm_fault_def faults[WRM_FAULT_MAX_] = {
	[WRM_FAULT_TIMED_OUT] = { WRM_FAULT_TIMED_OUT, "s:Receiver",
	    "w:TimedOut", A_FAULT_WSMAN, NULL, 2150858793u, T_TIMEOUT, NULL,
	    NULL, NULL },
	[WRM_FAULT_INVALID_SELECTORS] = { WRM_FAULT_INVALID_SELECTORS,
	    "s:Sender", "w:InvalidSelectors", A_FAULT_WSMAN,
	    "UnexpectedSelectors", 2150858843u, T_SELECTORS, NULL, NULL, NULL },
	[WRM_FAULT_INVALID_COMMAND] = { WRM_FAULT_INVALID_COMMAND, "s:Sender",
	    "w:InvalidSelectors", A_FAULT_WSMAN, "UnexpectedSelectors",
	    2150858843u, T_SELECTORS,
	    "The Windows Remote Shell received a request to perform an "
	    "operation on a command identifier that does not exist. Either the "
	    "command has completed execution or the client specified an "
	    "invalid command identifier. ", NULL, NULL },
	[WRM_FAULT_INSUFFICIENT_SELECTORS] = { WRM_FAULT_INSUFFICIENT_SELECTORS,
	    "s:Sender", "w:InvalidSelectors", A_FAULT_WSMAN,
	    "InsufficientSelectors", 2150858813u, T_SELECTORS,
	    "The WS-Management service cannot process the request because "
	    "the request does not name the shell (no ShellId selector). ",
	    NULL, NULL },
	[WRM_FAULT_INVALID_HEADER] = { WRM_FAULT_INVALID_HEADER, "s:Sender",
	    "a:InvalidMessageInformationHeader", A_FAULT_ADDR, NULL,
	    2150858767u, T_BAD_HEADER, NULL, NULL, NULL },
	[WRM_FAULT_INVALID_TIMEOUT] = { WRM_FAULT_INVALID_TIMEOUT, "s:Sender",
	    "a:InvalidMessageInformationHeader", A_FAULT_ADDR, NULL,
	    2150858767u, T_BAD_HEADER,
	    "The WS-Management service cannot process the request. The XML "
	    "contains an invalid timeout field in the SOAP header. ", NULL,
	    NULL },
	[WRM_FAULT_HEADER_REQUIRED] = { WRM_FAULT_HEADER_REQUIRED, "s:Sender",
	    "a:MessageInformationHeaderRequired", A_FAULT_ADDR, NULL,
	    2150858769u, "The WS-Management service cannot process the "
	    "request because a required SOAP header is missing. ", NULL, NULL,
	    NULL },
	[WRM_FAULT_ACTION_NOT_SUPPORTED] = { WRM_FAULT_ACTION_NOT_SUPPORTED,
	    "s:Sender", "a:ActionNotSupported", A_FAULT_ADDR, NULL,
	    2150858771u, "The WS-Management service cannot process the "
	    "request because the action is not supported for this resource. ",
	    NULL, NULL, NULL },
	[WRM_FAULT_DESTINATION_UNREACHABLE] = {
	    WRM_FAULT_DESTINATION_UNREACHABLE, "s:Sender",
	    "a:DestinationUnreachable", A_FAULT_ADDR, "InvalidResourceURI",
	    2150858811u, "The WS-Management service cannot process the "
	    "request. The resource URI is not valid or no session "
	    "configuration serves it. ", NULL, NULL, NULL },
	[WRM_FAULT_ADDRESSING_MODE] = { WRM_FAULT_ADDRESSING_MODE, "s:Sender",
	    "w:UnsupportedFeature", A_FAULT_WSMAN, "AddressingMode",
	    2150858818u, "The WS-Management service does not support the "
	    "requested addressing mode: ReplyTo must be anonymous. ", NULL,
	    NULL, NULL },
	[WRM_FAULT_MIN_ENVELOPE] = { WRM_FAULT_MIN_ENVELOPE, "s:Sender",
	    "w:EncodingLimit", A_FAULT_WSMAN, "MinimumEnvelopeLimit",
	    2150858878u, "The WS-Management service cannot process the "
	    "request because the MaxEnvelopeSize is smaller than 8192 "
	    "bytes. ", NULL, NULL, NULL },
	[WRM_FAULT_ENCODING_LIMIT] = { WRM_FAULT_ENCODING_LIMIT, "s:Sender",
	    "w:EncodingLimit", A_FAULT_WSMAN, "MaxEnvelopeSize", 2150858823u,
	    "The WS-Management service cannot process the request because the "
	    "response would exceed the MaxEnvelopeSize. ", NULL, NULL, NULL },
	[WRM_FAULT_ACCESS_DENIED] = { WRM_FAULT_ACCESS_DENIED, "s:Sender",
	    "w:AccessDenied", A_FAULT_WSMAN, NULL, 5, "Access is denied. ",
	    NULL, NULL, NULL },
	[WRM_FAULT_QUOTA_SHELLS] = { WRM_FAULT_QUOTA_SHELLS, "s:Sender",
	    "w:QuotaLimit", A_FAULT_WSMAN, NULL, 2150859173u,
	    "The WS-Management service cannot process the request. This user "
	    "is allowed a maximum number of concurrent shells, which has been "
	    "exceeded. Close existing shells or raise the quota for this "
	    "user. ", NULL, NULL, NULL },
	[WRM_FAULT_QUOTA_USERS] = { WRM_FAULT_QUOTA_USERS, "s:Sender",
	    "w:QuotaLimit", A_FAULT_WSMAN, NULL, 2150859179u,
	    "The WS-Management service cannot process the request. The "
	    "maximum number of concurrent users has been reached. ", NULL,
	    NULL, NULL },
	[WRM_FAULT_QUOTA_OPERATIONS] = { WRM_FAULT_QUOTA_OPERATIONS,
	    "s:Receiver", "w:InternalError", A_FAULT_WSMAN, NULL, 2150859174u,
	    "The WS-Management service cannot process the request. This user "
	    "has exceeded the maximum number of concurrent operations. ",
	    NULL, NULL, NULL },
	[WRM_FAULT_INVALID_OPTIONS] = { WRM_FAULT_INVALID_OPTIONS, "s:Sender",
	    "w:InvalidOptions", A_FAULT_WSMAN, NULL, 2150858809u,
	    "The WS-Management service cannot process the request because an "
	    "option marked MustComply is not supported. ", NULL, NULL, NULL },
	[WRM_FAULT_INVALID_PARAMETER] = { WRM_FAULT_INVALID_PARAMETER,
	    "s:Sender", "w:InvalidParameter", A_FAULT_WSMAN, "InvalidValue",
	    87, T_PARAM, NULL, NULL, NULL },
	[WRM_FAULT_INVALID_XML] = { WRM_FAULT_INVALID_XML, "s:Sender",
	    "w:InvalidParameter", A_FAULT_WSMAN, "InvalidValue", 87, T_PARAM,
	    "The request is not a well-formed SOAP 1.2 envelope. ", NULL,
	    NULL },
	[WRM_FAULT_RECEIVE_NO_COMMAND] = { WRM_FAULT_RECEIVE_NO_COMMAND,
	    "s:Sender", "w:InvalidParameter", A_FAULT_WSMAN, "InvalidValue",
	    87, T_PARAM, NULL, T_CMD_PROVIDER, T_CMD_PATH },
	[WRM_FAULT_INTERNAL] = { WRM_FAULT_INTERNAL, "s:Receiver",
	    "w:InternalError", A_FAULT_WSMAN, NULL, WRM_ERROR_PLUGIN_FAILED,
	    "The WS-Management service cannot process the request because of "
	    "an internal error. ", NULL, NULL, NULL },
	[WRM_FAULT_SHELL_DISCONNECTED] = { WRM_FAULT_SHELL_DISCONNECTED,
	    "s:Receiver", "w:InternalError", A_FAULT_WSMAN, NULL, 2150859204u,
	    "The request cannot be processed because the shell is "
	    "disconnected. ", NULL, NULL, NULL },
	[WRM_FAULT_DISCONNECT_NOT_SUPPORTED] = {
	    WRM_FAULT_DISCONNECT_NOT_SUPPORTED, "s:Receiver", "w:InternalError",
	    A_FAULT_WSMAN, NULL, 2150859205u, "The shell does not support "
	    "disconnect operations. ", NULL, NULL, NULL },
	[WRM_FAULT_SHELLS_NOT_ALLOWED] = { WRM_FAULT_SHELLS_NOT_ALLOWED,
	    "s:Receiver", "w:InternalError", A_FAULT_WSMAN, NULL, 2150859180u,
	    "The WS-Management service cannot process the request because "
	    "remote shells are not allowed (AllowRemoteShellAccess). ", NULL,
	    NULL, NULL },
	[WRM_FAULT_INVALID_ENUM_CONTEXT] = { WRM_FAULT_INVALID_ENUM_CONTEXT,
	    "s:Sender", "n:InvalidEnumerationContext", A_FAULT_ENUM, NULL,
	    2150858779u, "The enumeration context is not valid or has "
	    "expired. ", NULL, NULL, NULL },
	[WRM_FAULT_MUST_UNDERSTAND] = { WRM_FAULT_MUST_UNDERSTAND,
	    "s:MustUnderstand", NULL, A_FAULT_ADDR, NULL, 2150858768u,
	    "The WS-Management service cannot process a SOAP header marked "
	    "mustUnderstand. ", NULL, NULL, NULL },
	[WRM_FAULT_VERSION_MISMATCH] = { WRM_FAULT_VERSION_MISMATCH,
	    "s:VersionMismatch", NULL, A_FAULT_ADDR, NULL, 0,
	    "Only SOAP 1.2 envelopes are supported. ", NULL, NULL, NULL },
	[WRM_FAULT_CONCURRENCY] = { WRM_FAULT_CONCURRENCY, "s:Sender",
	    "w:Concurrency", A_FAULT_WSMAN, NULL, 2150858802u,
	    "The action could not be completed because of a conflicting "
	    "operation on the same resource. ", NULL, NULL, NULL },
	[WRM_FAULT_BUSY] = { WRM_FAULT_BUSY, "s:Receiver", "w:InternalError",
	    A_FAULT_WSMAN, NULL, 170, "The requested resource is in use. ",
	    NULL, NULL, NULL },
	[WRM_FAULT_SHELL_BROKEN] = { WRM_FAULT_SHELL_BROKEN, "s:Receiver",
	    "w:InternalError", A_FAULT_WSMAN, NULL, 2150858843u,
	    "The shell's host process ended unexpectedly; the shell is "
	    "closed. ", NULL, NULL, NULL },
	[WRM_FAULT_ALREADY_CONNECTED] = { WRM_FAULT_ALREADY_CONNECTED,
	    "s:Receiver", "w:InternalError", A_FAULT_WSMAN, NULL, 2150859213u,
	    "The shell is connected to a different client. Disconnect it "
	    "from that client first. ", NULL, NULL, NULL },
	[WRM_FAULT_INVALID_STREAM] = { WRM_FAULT_INVALID_STREAM, "s:Sender",
	    "w:InvalidParameter", A_FAULT_WSMAN, "InvalidValue", 2150859147u,
	    "The stream name is not one of the shell's input streams. ",
	    NULL, NULL, NULL },
	[WRM_FAULT_SERVICE_STOPPING] = { WRM_FAULT_SERVICE_STOPPING,
	    "s:Receiver", "w:InternalError", A_FAULT_WSMAN, NULL, 2150858843u,
	    "The WS-Management service is shutting down. ", NULL, NULL, NULL },
};

static const char *const names[WRM_FAULT_MAX_] = {
	"None", "TimedOut", "InvalidSelectors", "InvalidCommand",
	"InsufficientSelectors", "InvalidHeader", "InvalidTimeout",
	"HeaderRequired", "ActionNotSupported", "DestinationUnreachable",
	"AddressingMode", "MinEnvelope", "EncodingLimit", "AccessDenied",
	"QuotaShells", "QuotaUsers", "QuotaOperations", "InvalidOptions",
	"InvalidParameter", "InvalidXml", "ReceiveNoCommand", "Internal",
	"ShellDisconnected", "DisconnectNotSupported", "ShellsNotAllowed",
	"InvalidEnumContext", "MustUnderstand", "VersionMismatch",
	"Concurrency", "Busy", "ShellBroken", "AlreadyConnected",
	"InvalidStream", "ServiceStopping",
};

const struct wrm_fault_def *
wrm_fault_def(enum wrm_fault id)
{
	if (id <= WRM_FAULT_NONE || id >= WRM_FAULT_MAX_)
		id = WRM_FAULT_INTERNAL;
	return &faults[id];
}

const char *
wrm_fault_name(enum wrm_fault id)
{
	if (id < 0 || id >= WRM_FAULT_MAX_)
		return "?";
	return names[id];
}

enum wrm_fault
wrm_fault_for_code(uint32_t code)
{
	switch (code) {
	case WRM_ERROR_INVALID_PARAMETER:
		return WRM_FAULT_INVALID_PARAMETER;
	case WRM_ERROR_ACCESS_DENIED:
		return WRM_FAULT_ACCESS_DENIED;
	case WRM_ERROR_INVALID_SELECTORS:
		return WRM_FAULT_INVALID_COMMAND;
	case WRM_ERROR_SHELL_INVALID_INPUT_STREAM:
		return WRM_FAULT_INVALID_STREAM;
	case 2150858793u:
		return WRM_FAULT_TIMED_OUT;
	case 2150859173u:
		return WRM_FAULT_QUOTA_SHELLS;
	case 2150859174u:
		return WRM_FAULT_QUOTA_OPERATIONS;
	case 2150858809u:
		return WRM_FAULT_INVALID_OPTIONS;
	default:
		return WRM_FAULT_INTERNAL;
	}
}
