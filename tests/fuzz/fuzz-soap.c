/*
 * libFuzzer harness for soap.c.
 *
 * Each input is a request body.  It is parsed twice (as sent, and as a
 * body the Content-Type declared UTF-16); whatever was understood is read
 * back through the accessors a handler uses, and then a fault is rendered
 * for it: the envelope's own fault when it has one, otherwise a row of
 * the fault table picked from the input.  The rendered fault must be
 * well-formed XML whose RelatesTo is the request's MessageID; anything
 * else aborts.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fault.h"
#include "ns.h"
#include "soap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch everything a handler might read. */
static void
walk(const struct wrm_soap_req *req)
{
	const xmlNode *n;
	char *s;
	size_t i;

	(void)wrm_soap_selector(req, "ShellId");
	(void)wrm_soap_selector(req, "CommandId");
	(void)wrm_soap_option(req, "protocolversion");
	(void)wrm_soap_option(req, "WINRS_NOPROFILE");
	for (i = 0; i < req->n_selectors; i++)
		if (req->selectors[i].name == NULL)
			abort();
	for (i = 0; i < req->n_options; i++)
		if (req->options[i].name == NULL)
			abort();
	if (req->payload == NULL)
		return;
	for (n = req->payload->children; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		s = wrm_xml_text(n, false);
		free(s);
		s = wrm_xml_text(n, true);
		free(s);
		s = wrm_xml_attr(n, "Name");
		free(s);
	}
	(void)wrm_xml_child(req->payload, NS_SHELL, "Command");
	(void)wrm_xml_next(req->payload, NS_SHELL, "Arguments");
}

/*
 * What a conforming parser reads back from text the writer escaped:
 * control characters (and DEL) became '?', and line ends are normalised
 * to LF.
 */
static char *
expected_text(const char *s)
{
	char *r = malloc(strlen(s) + 1), *w = r;

	if (r == NULL)
		abort();
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r') {
			*w++ = '\n';
			if (s[1] == '\n')
				s++;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			*w++ = '?';
		else
			*w++ = (char)c;
	}
	*w = '\0';
	return r;
}

static void
check_fault(const struct wrm_soap_req *req, const uint8_t *data,
    size_t size)
{
	struct wrm_fault_info fi;
	struct wrm_buf out;
	xmlDoc *doc;
	xmlNode *n;
	xmlChar *t;
	char *want;
	bool found = false;

	memset(&fi, 0, sizeof(fi));
	if (req->fault != WRM_FAULT_NONE) {
		fi.id = req->fault;
		fi.message = req->fault_message;
	} else {
		fi.id = (enum wrm_fault)(1 + (size > 0 ? data[size / 2] : 0) %
		    (WRM_FAULT_MAX_ - 1));
		fi.wmierror = size & 1;
	}
	wrm_buf_init(&out, 0);
	if (wrm_soap_fault(&out, &fi, req->message_id, "fuzz.example") != 0)
		abort();
	doc = xmlReadMemory((const char *)wrm_buf_ptr(&out),
	    (int)wrm_buf_len(&out), NULL, NULL, XML_PARSE_NONET);
	if (doc == NULL)
		abort();		/* not well-formed */
	if (req->message_id != NULL) {
		want = expected_text(req->message_id);
		n = xmlDocGetRootElement(doc)->children;	/* s:Header */
		for (n = n->children; n != NULL; n = n->next) {
			if (n->type != XML_ELEMENT_NODE ||
			    strcmp((const char *)n->name, "RelatesTo") != 0)
				continue;
			t = xmlNodeGetContent(n);
			if (strcmp((const char *)t, want) != 0)
				abort();	/* RelatesTo not echoed */
			xmlFree(t);
			found = true;
		}
		if (!found)
			abort();
		free(want);
	}
	xmlFreeDoc(doc);
	wrm_buf_free(&out);
}

static void
one(const uint8_t *data, size_t size, bool utf16)
{
	struct wrm_soap_req req;

	if (wrm_soap_parse(data, size, utf16, &req) != 0) {
		wrm_soap_req_free(&req);
		return;
	}
	if (req.fault == WRM_FAULT_NONE && !req.is_identify &&
	    (req.action == NULL || req.message_id == NULL ||
	    req.reply_to == NULL))
		abort();		/* accepted without required headers */
	walk(&req);
	check_fault(&req, data, size);
	wrm_soap_req_free(&req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		wrm_soap_init();
		init = true;
	}
	one(data, size, false);
	one(data, size, true);
	return 0;
}
