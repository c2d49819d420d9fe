/*
 * Unit tests for fault.c: every enum wrm_fault has a complete row, the
 * rows agree with the fault catalogue of docs/protocol-brief.md §5.4 and
 * with the faults Windows sent in tests/data/windows-traces, and plugin
 * error codes map to the faults Windows sends for them.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "ns.h"
#include "plugin-codes.h"
#include "util.h"

static void
test_fault_every_enum_has_row(void **state)
{
	const struct wrm_fault_def *d;
	size_t len;
	int id, j;

	(void)state;
	for (id = WRM_FAULT_NONE + 1; id < WRM_FAULT_MAX_; id++) {
		d = wrm_fault_def((enum wrm_fault)id);
		assert_non_null(d);
		if ((int)d->id != id)
			fail_msg("fault %d (%s) has no row of its own", id,
			    wrm_fault_name((enum wrm_fault)id));
		assert_non_null(d->code);
		assert_int_equal(strncmp(d->code, "s:", 2), 0);
		assert_non_null(d->action);
		assert_non_null(d->reason);
		/* Windows texts end with a space; clients strip it. */
		len = strlen(d->reason);
		assert_true(len > 2 && d->reason[len - 1] == ' ');
		if (d->message != NULL) {
			len = strlen(d->message);
			assert_true(len > 2 && d->message[len - 1] == ' ');
		}
		if (d->provider != NULL)
			assert_non_null(d->provider_path);
		/* The Action follows the subcode's namespace. */
		if (d->subcode == NULL || strncmp(d->subcode, "a:", 2) == 0)
			assert_string_equal(d->action, A_FAULT_ADDR);
		else if (strncmp(d->subcode, "w:", 2) == 0)
			assert_string_equal(d->action, A_FAULT_WSMAN);
		else if (strncmp(d->subcode, "n:", 2) == 0)
			assert_string_equal(d->action, A_FAULT_ENUM);
		else
			fail_msg("fault %d: subcode %s has an unknown prefix",
			    id, d->subcode);
		/* A name, distinct from every other. */
		assert_string_not_equal(wrm_fault_name((enum wrm_fault)id), "?");
		for (j = 0; j < id; j++)
			assert_string_not_equal(
			    wrm_fault_name((enum wrm_fault)id),
			    wrm_fault_name((enum wrm_fault)j));
	}
}

static void
test_fault_out_of_range(void **state)
{
	const struct wrm_fault_def *internal = wrm_fault_def(WRM_FAULT_INTERNAL);

	(void)state;
	assert_ptr_equal(wrm_fault_def(WRM_FAULT_NONE), internal);
	assert_ptr_equal(wrm_fault_def(WRM_FAULT_MAX_), internal);
	assert_ptr_equal(wrm_fault_def((enum wrm_fault)1000), internal);
	assert_ptr_equal(wrm_fault_def((enum wrm_fault)-1), internal);
	assert_string_equal(wrm_fault_name(WRM_FAULT_NONE), "None");
	assert_string_equal(wrm_fault_name(WRM_FAULT_MAX_), "?");
	assert_string_equal(wrm_fault_name((enum wrm_fault)-1), "?");
}

/* docs/protocol-brief.md §5.4, one line per condition. */
static const struct {
	enum wrm_fault id;
	const char *code;
	const char *subcode;
	const char *detail;
	uint32_t wsman_code;
} catalogue[] = {
	{ WRM_FAULT_TIMED_OUT, "s:Receiver", "w:TimedOut", NULL,
	    2150858793u },
	{ WRM_FAULT_INVALID_SELECTORS, "s:Sender", "w:InvalidSelectors",
	    "UnexpectedSelectors", 2150858843u },
	{ WRM_FAULT_INVALID_COMMAND, "s:Sender", "w:InvalidSelectors",
	    "UnexpectedSelectors", 2150858843u },
	{ WRM_FAULT_INSUFFICIENT_SELECTORS, "s:Sender", "w:InvalidSelectors",
	    "InsufficientSelectors", 2150858813u },
	{ WRM_FAULT_INVALID_HEADER, "s:Sender",
	    "a:InvalidMessageInformationHeader", NULL, 2150858767u },
	{ WRM_FAULT_INVALID_TIMEOUT, "s:Sender",
	    "a:InvalidMessageInformationHeader", NULL, 2150858767u },
	{ WRM_FAULT_HEADER_REQUIRED, "s:Sender",
	    "a:MessageInformationHeaderRequired", NULL, 2150858769u },
	{ WRM_FAULT_ACTION_NOT_SUPPORTED, "s:Sender", "a:ActionNotSupported",
	    NULL, 2150858771u },
	{ WRM_FAULT_DESTINATION_UNREACHABLE, "s:Sender",
	    "a:DestinationUnreachable", "InvalidResourceURI", 2150858811u },
	{ WRM_FAULT_ADDRESSING_MODE, "s:Sender", "w:UnsupportedFeature",
	    "AddressingMode", 2150858818u },
	{ WRM_FAULT_MIN_ENVELOPE, "s:Sender", "w:EncodingLimit",
	    "MinimumEnvelopeLimit", 2150858878u },
	{ WRM_FAULT_ENCODING_LIMIT, "s:Sender", "w:EncodingLimit",
	    "MaxEnvelopeSize", 2150858823u },
	{ WRM_FAULT_ACCESS_DENIED, "s:Sender", "w:AccessDenied", NULL, 5 },
	{ WRM_FAULT_QUOTA_SHELLS, "s:Sender", "w:QuotaLimit", NULL,
	    2150859173u },
	{ WRM_FAULT_QUOTA_USERS, "s:Sender", "w:QuotaLimit", NULL,
	    2150859179u },
	{ WRM_FAULT_QUOTA_OPERATIONS, "s:Receiver", "w:InternalError", NULL,
	    2150859174u },
	{ WRM_FAULT_INVALID_OPTIONS, "s:Sender", "w:InvalidOptions", NULL,
	    2150858809u },
	{ WRM_FAULT_INVALID_PARAMETER, "s:Sender", "w:InvalidParameter",
	    "InvalidValue", 87 },
	{ WRM_FAULT_INVALID_XML, "s:Sender", "w:InvalidParameter",
	    "InvalidValue", 87 },
	{ WRM_FAULT_RECEIVE_NO_COMMAND, "s:Sender", "w:InvalidParameter",
	    "InvalidValue", 87 },
	{ WRM_FAULT_SHELL_DISCONNECTED, "s:Receiver", "w:InternalError", NULL,
	    2150859204u },
	{ WRM_FAULT_DISCONNECT_NOT_SUPPORTED, "s:Receiver", "w:InternalError",
	    NULL, 2150859205u },
	{ WRM_FAULT_SHELLS_NOT_ALLOWED, "s:Receiver", "w:InternalError", NULL,
	    2150859180u },
	{ WRM_FAULT_INVALID_ENUM_CONTEXT, "s:Sender",
	    "n:InvalidEnumerationContext", NULL, 2150858779u },
	{ WRM_FAULT_MUST_UNDERSTAND, "s:MustUnderstand", NULL, NULL,
	    2150858768u },
	{ WRM_FAULT_CONCURRENCY, "s:Sender", "w:Concurrency", NULL,
	    2150858802u },
	{ WRM_FAULT_BUSY, "s:Receiver", "w:InternalError", NULL, 170 },
};

static void
assert_str_or_null(const char *got, const char *want, const char *what,
    enum wrm_fault id)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: %s is \"%s\", the catalogue says \"%s\"",
		    wrm_fault_name(id), what, got ? got : "(none)",
		    want ? want : "(none)");
}

static void
test_fault_catalogue(void **state)
{
	const struct wrm_fault_def *d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
		d = wrm_fault_def(catalogue[i].id);
		assert_int_equal(d->id, catalogue[i].id);
		assert_str_or_null(d->code, catalogue[i].code, "Code",
		    d->id);
		assert_str_or_null(d->subcode, catalogue[i].subcode, "Subcode",
		    d->id);
		assert_str_or_null(d->detail, catalogue[i].detail,
		    "FaultDetail", d->id);
		if (d->wsman_code != catalogue[i].wsman_code)
			fail_msg("%s: WSManFault Code %u, the catalogue says "
			    "%u", wrm_fault_name(d->id), d->wsman_code,
			    catalogue[i].wsman_code);
	}
	/* Row-specific details the catalogue spells out. */
	d = wrm_fault_def(WRM_FAULT_TIMED_OUT);
	assert_string_equal(d->reason, "The WS-Management service cannot "
	    "complete the operation within the time specified in "
	    "OperationTimeout.  ");
	d = wrm_fault_def(WRM_FAULT_RECEIVE_NO_COMMAND);
	assert_string_equal(d->provider, "Shell cmd plugin");
	assert_string_equal(d->provider_path,
	    "%systemroot%\\system32\\winrscmd.dll");
	d = wrm_fault_def(WRM_FAULT_INTERNAL);
	assert_string_equal(d->code, "s:Receiver");
	assert_string_equal(d->subcode, "w:InternalError");
	d = wrm_fault_def(WRM_FAULT_VERSION_MISMATCH);
	assert_string_equal(d->code, "s:VersionMismatch");
	assert_null(d->subcode);
	assert_string_equal(d->action, A_FAULT_ADDR);
}

static void
test_fault_for_code(void **state)
{
	static const struct {
		uint32_t code;
		enum wrm_fault id;
	} map[] = {
		{ WRM_ERROR_INVALID_PARAMETER, WRM_FAULT_INVALID_PARAMETER },
		{ WRM_ERROR_ACCESS_DENIED, WRM_FAULT_ACCESS_DENIED },
		{ WRM_ERROR_INVALID_SELECTORS, WRM_FAULT_INVALID_COMMAND },
		{ WRM_ERROR_SHELL_INVALID_INPUT_STREAM,
		    WRM_FAULT_INVALID_STREAM },
		{ 2150858793u, WRM_FAULT_TIMED_OUT },
		{ 2150859173u, WRM_FAULT_QUOTA_SHELLS },
		{ 2150859174u, WRM_FAULT_QUOTA_OPERATIONS },
		{ 2150858809u, WRM_FAULT_INVALID_OPTIONS },
	};
	static const uint32_t other[] = {
		WRM_ERROR_NOT_ENOUGH_MEMORY, WRM_ERROR_FILE_NOT_FOUND,
		WRM_ERROR_NOT_SUPPORTED, WRM_ERROR_PLUGIN_FAILED, 2147942606u,
		1, 0xffffffffu,
	};
	const struct wrm_fault_def *d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (wrm_fault_for_code(map[i].code) != map[i].id)
			fail_msg("code %u maps to %s, expected %s",
			    map[i].code,
			    wrm_fault_name(wrm_fault_for_code(map[i].code)),
			    wrm_fault_name(map[i].id));
		/* Rendered without override, the row carries that code. */
		assert_int_equal(wrm_fault_def(map[i].id)->wsman_code,
		    map[i].code);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		assert_int_equal(wrm_fault_for_code(other[i]),
		    WRM_FAULT_INTERNAL);
	/* Busy (170) renders the same way whichever row it takes. */
	d = wrm_fault_def(wrm_fault_for_code(WRM_ERROR_BUSY));
	assert_string_equal(d->code, "s:Receiver");
	assert_string_equal(d->subcode, "w:InternalError");
	/* The plugin-failure default is the InternalError row's code. */
	assert_int_equal(wrm_fault_def(WRM_FAULT_INTERNAL)->wsman_code,
	    WRM_ERROR_PLUGIN_FAILED);
}

/* ---- the faults Windows sent ---- */

static bool
eq0(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Check one recorded fault envelope against the table. */
static void
check_recorded_fault(const char *file, const char *xml)
{
	xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL,
	    XML_PARSE_NONET);
	char *action, *code, *sub, *detail, *wcode, *reason, *suffix;
	const struct wrm_fault_def *d;
	uint32_t c;
	bool found = false;
	int id;

	assert_non_null(doc);
	action = tu_xp_text(doc, "/s:Envelope/s:Header/a:Action");
	code = tu_xp_text(doc, "//s:Fault/s:Code/s:Value");
	sub = tu_xp_text(doc, "//s:Fault/s:Code/s:Subcode/s:Value");
	detail = tu_xp_text(doc, "//s:Fault/s:Detail/w:FaultDetail");
	wcode = tu_xp_text(doc, "//s:Fault/s:Detail/f:WSManFault/@Code");
	reason = tu_xp_text(doc, "//s:Fault/s:Reason/s:Text");
	assert_non_null(code);
	assert_non_null(wcode);
	c = (uint32_t)strtoul(wcode, NULL, 10);
	suffix = detail != NULL ? detail + strlen(URI_FAULT_DETAIL) : NULL;
	for (id = WRM_FAULT_NONE + 1; id < WRM_FAULT_MAX_ && !found; id++) {
		d = wrm_fault_def((enum wrm_fault)id);
		found = d->wsman_code == c && eq0(d->code, code) &&
		    eq0(d->subcode, sub) && eq0(d->detail, suffix) &&
		    eq0(d->action, action) && eq0(d->reason, reason);
	}
	if (!found) {
		/* A plugin's own code: InternalError carrying it. */
		d = wrm_fault_def(wrm_fault_for_code(c));
		found = d->id == WRM_FAULT_INTERNAL && eq0(d->code, code) &&
		    eq0(d->subcode, sub) && eq0(d->detail, suffix) &&
		    eq0(d->action, action);
	}
	if (!found)
		fail_msg("%s: no row renders Windows' fault %s / %s / %s / %s",
		    file, code, sub ? sub : "-", suffix ? suffix : "-", wcode);
	free(action);
	free(code);
	free(sub);
	free(detail);
	free(wcode);
	free(reason);
	xmlFreeDoc(doc);
}

static void
check_trace_response(const char *file, const char *request,
    const char *response, void *arg)
{
	size_t *n = arg;

	(void)request;
	if (strstr(response, "<s:Fault>") == NULL)
		return;
	check_recorded_fault(file, response);
	(*n)++;
}

static void
test_fault_windows_traces(void **state)
{
	size_t n = 0;

	(void)state;
	tu_foreach_trace(check_trace_response, &n);
	assert_true(n >= 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_every_enum_has_row),
		cmocka_unit_test(test_fault_out_of_range),
		cmocka_unit_test(test_fault_catalogue),
		cmocka_unit_test(test_fault_for_code),
		cmocka_unit_test(test_fault_windows_traces),
	};

	xmlInitParser();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
