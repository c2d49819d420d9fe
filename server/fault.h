/*
 * WS-Management faults: one table maps each enum wrm_fault to the SOAP
 * code and subcode, the fault Action, the optional w:FaultDetail, the
 * WSManFault code Windows sends and the message text.  No handler builds
 * fault XML itself: it fills a struct wrm_fault_info and the response
 * writer renders it (soap.c).
 */
#ifndef WRM_FAULT_H
#define WRM_FAULT_H

#include <stdint.h>

enum wrm_fault {
	WRM_FAULT_NONE = 0,
	WRM_FAULT_TIMED_OUT,
	WRM_FAULT_INVALID_SELECTORS,		/* unknown shell */
	WRM_FAULT_INVALID_COMMAND,		/* unknown command id */
	WRM_FAULT_INSUFFICIENT_SELECTORS,
	WRM_FAULT_INVALID_HEADER,		/* bad header value */
	WRM_FAULT_INVALID_TIMEOUT,		/* bad OperationTimeout */
	WRM_FAULT_HEADER_REQUIRED,		/* missing Action/MessageID/... */
	WRM_FAULT_ACTION_NOT_SUPPORTED,
	WRM_FAULT_DESTINATION_UNREACHABLE,	/* unknown resource URI */
	WRM_FAULT_ADDRESSING_MODE,		/* ReplyTo not anonymous */
	WRM_FAULT_MIN_ENVELOPE,			/* MaxEnvelopeSize < 8192 */
	WRM_FAULT_ENCODING_LIMIT,		/* response cannot fit */
	WRM_FAULT_ACCESS_DENIED,
	WRM_FAULT_QUOTA_SHELLS,
	WRM_FAULT_QUOTA_USERS,
	WRM_FAULT_QUOTA_OPERATIONS,
	WRM_FAULT_INVALID_OPTIONS,
	WRM_FAULT_INVALID_PARAMETER,
	WRM_FAULT_INVALID_XML,
	WRM_FAULT_RECEIVE_NO_COMMAND,		/* cmd Receive without CommandId */
	WRM_FAULT_INTERNAL,			/* with a code from the plugin */
	WRM_FAULT_SHELL_DISCONNECTED,
	WRM_FAULT_DISCONNECT_NOT_SUPPORTED,
	WRM_FAULT_SHELLS_NOT_ALLOWED,
	WRM_FAULT_INVALID_ENUM_CONTEXT,
	WRM_FAULT_MUST_UNDERSTAND,
	WRM_FAULT_VERSION_MISMATCH,
	WRM_FAULT_CONCURRENCY,
	WRM_FAULT_BUSY,
	WRM_FAULT_SHELL_BROKEN,			/* its host died */
	WRM_FAULT_ALREADY_CONNECTED,
	WRM_FAULT_INVALID_STREAM,
	WRM_FAULT_SERVICE_STOPPING,
	WRM_FAULT_MAX_
};

struct wrm_fault_def {
	enum wrm_fault id;
	const char *code;		/* "s:Sender" / "s:Receiver" / ... */
	const char *subcode;		/* "w:InvalidSelectors" or NULL */
	const char *action;		/* fault Action URI */
	const char *detail;		/* w:FaultDetail suffix or NULL */
	uint32_t wsman_code;		/* 0: no WSManFault element */
	const char *reason;		/* s:Reason text */
	const char *message;		/* f:Message text (NULL: reason) */
	const char *provider;		/* ProviderFault provider or NULL */
	const char *provider_path;
};

/* A fault to send: the table row plus per-instance overrides. */
struct wrm_fault_info {
	enum wrm_fault id;
	uint32_t code;			/* 0: the table's */
	const char *message;		/* NULL: the table's (borrowed) */
	const char *provider;		/* NULL: the table's */
	const char *provider_path;
	int wmierror;			/* add an MSFT_WmiError detail */
};

const struct wrm_fault_def *wrm_fault_def(enum wrm_fault id);
/*
 * The fault Windows sends for a plugin's operation_complete() error code
 * (87 -> InvalidParameter, 2150858843 -> InvalidSelectors, 5 ->
 * AccessDenied, ...; anything else InternalError with that code).
 */
enum wrm_fault wrm_fault_for_code(uint32_t code);
const char *wrm_fault_name(enum wrm_fault id);

#endif
