#include "config.h"

#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "soap.h"

#define MAX_MESSAGE_ID	2048
#define MAX_SELECTORS	32
#define MAX_OPTIONS	64

static void
silent_error(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void
silent_structured(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

void
wrm_soap_init(void)
{
	xmlInitParser();
	xmlSetGenericErrorFunc(NULL, silent_error);
	xmlSetStructuredErrorFunc(NULL, silent_structured);
}

/* Decode UTF-16 (BOM-selected order, default little-endian) to UTF-8. */
static int
utf16_to_utf8(const uint8_t *in, size_t len, struct wrm_buf *out)
{
	bool be = false;
	size_t i = 0;
	uint32_t c, c2;
	uint8_t t[4];
	int r, n;

	if (len >= 2 && in[0] == 0xfe && in[1] == 0xff) {
		be = true;
		i = 2;
	} else if (len >= 2 && in[0] == 0xff && in[1] == 0xfe)
		i = 2;
	if ((len - i) % 2 != 0)
		return WRM_ERR_PARSE;
	while (i < len) {
		c = be ? (uint32_t)(in[i] << 8 | in[i + 1]) :
		    (uint32_t)(in[i] | in[i + 1] << 8);
		i += 2;
		if (c >= 0xd800 && c < 0xdc00) {
			if (i + 2 > len)
				return WRM_ERR_PARSE;
			c2 = be ? (uint32_t)(in[i] << 8 | in[i + 1]) :
			    (uint32_t)(in[i] | in[i + 1] << 8);
			if (c2 < 0xdc00 || c2 >= 0xe000)
				return WRM_ERR_PARSE;
			i += 2;
			c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
		} else if (c >= 0xdc00 && c < 0xe000)
			return WRM_ERR_PARSE;
		if (c < 0x80) {
			t[0] = (uint8_t)c;
			n = 1;
		} else if (c < 0x800) {
			t[0] = (uint8_t)(0xc0 | c >> 6);
			t[1] = (uint8_t)(0x80 | (c & 0x3f));
			n = 2;
		} else if (c < 0x10000) {
			t[0] = (uint8_t)(0xe0 | c >> 12);
			t[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			t[2] = (uint8_t)(0x80 | (c & 0x3f));
			n = 3;
		} else {
			t[0] = (uint8_t)(0xf0 | c >> 18);
			t[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
			t[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			t[3] = (uint8_t)(0x80 | (c & 0x3f));
			n = 4;
		}
		if ((r = wrm_buf_put(out, t, (size_t)n)) != 0)
			return r;
	}
	return 0;
}

int
wrm_utf8_to_utf16le(const uint8_t *in, size_t len, struct wrm_buf *out)
{
	static const uint8_t bom[2] = { 0xff, 0xfe };
	uint32_t c;
	size_t i = 0, n;
	int r;

	if ((r = wrm_buf_put(out, bom, 2)) != 0)
		return r;
	while (i < len) {
		c = in[i];
		if (c < 0x80)
			n = 1;
		else if ((c & 0xe0) == 0xc0) {
			n = 2;
			c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			c &= 0x07;
		} else
			return WRM_ERR_PARSE;
		if (i + n > len)
			return WRM_ERR_PARSE;
		for (size_t k = 1; k < n; k++)
			c = c << 6 | (in[i + k] & 0x3f);
		i += n;
		if (c >= 0x10000) {
			c -= 0x10000;
			if ((r = wrm_buf_put_u16_le(out,
			    (uint16_t)(0xd800 + (c >> 10)))) != 0 ||
			    (r = wrm_buf_put_u16_le(out,
			    (uint16_t)(0xdc00 + (c & 0x3ff)))) != 0)
				return r;
		} else if ((r = wrm_buf_put_u16_le(out, (uint16_t)c)) != 0)
			return r;
	}
	return 0;
}

bool
wrm_xml_is(const xmlNode *node, const char *ns, const char *name)
{
	return node != NULL && node->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)node->name, name) == 0 &&
	    (ns == NULL || (node->ns != NULL && node->ns->href != NULL &&
	    strcmp((const char *)node->ns->href, ns) == 0));
}

xmlNode *
wrm_xml_next(const xmlNode *node, const char *ns, const char *name)
{
	for (node = node ? node->next : NULL; node != NULL; node = node->next)
		if (wrm_xml_is(node, ns, name))
			return (xmlNode *)node;
	return NULL;
}

xmlNode *
wrm_xml_child(const xmlNode *parent, const char *ns, const char *name)
{
	const xmlNode *c;

	if (parent == NULL)
		return NULL;
	for (c = parent->children; c != NULL; c = c->next)
		if (wrm_xml_is(c, ns, name))
			return (xmlNode *)c;
	return NULL;
}

char *
wrm_xml_text(const xmlNode *node, bool raw)
{
	xmlChar *t;
	char *r;

	if (node == NULL)
		return NULL;
	if ((t = xmlNodeGetContent(node)) == NULL)
		return strdup("");
	r = raw ? strdup((const char *)t) : wrm_strdup_trim((const char *)t);
	xmlFree(t);
	return r;
}

char *
wrm_xml_attr(const xmlNode *node, const char *name)
{
	xmlAttr *a;
	xmlChar *v;
	char *r;

	if (node == NULL)
		return NULL;
	for (a = node->properties; a != NULL; a = a->next) {
		if (strcmp((const char *)a->name, name) != 0)
			continue;
		if ((v = xmlNodeListGetString(node->doc, a->children, 1)) == NULL)
			return strdup("");
		r = wrm_strdup_trim((const char *)v);
		xmlFree(v);
		return r;
	}
	return NULL;
}

static char *
xml_lang(const xmlNode *node)
{
	xmlChar *v = xmlGetNsProp(node, (const xmlChar *)"lang",
	    XML_XML_NAMESPACE);
	char *r;

	if (v == NULL)
		return NULL;
	r = wrm_strdup_trim((const char *)v);
	xmlFree(v);
	return r;
}

static void
set_fault(struct wrm_soap_req *req, enum wrm_fault f, const char *msg)
{
	if (req->fault != WRM_FAULT_NONE)
		return;
	req->fault = f;
	free(req->fault_message);
	req->fault_message = msg ? strdup(msg) : NULL;
}

static void
parse_selectors(struct wrm_soap_req *req, const xmlNode *set)
{
	const xmlNode *c;
	char *name;

	for (c = set->children; c != NULL; c = c->next) {
		if (!wrm_xml_is(c, NS_WSMAN, "Selector"))
			continue;
		if (req->n_selectors == MAX_SELECTORS) {
			set_fault(req, WRM_FAULT_INVALID_HEADER,
			    "Too many selectors. ");
			return;
		}
		if ((name = wrm_xml_attr(c, "Name")) == NULL)
			continue;
		req->selectors[req->n_selectors].name = name;
		req->selectors[req->n_selectors].value = wrm_xml_text(c, false);
		req->n_selectors++;
	}
}

static void
parse_options(struct wrm_soap_req *req, const xmlNode *set)
{
	const xmlNode *c;
	struct wrm_soap_option *o;
	char *mc;

	for (c = set->children; c != NULL; c = c->next) {
		if (!wrm_xml_is(c, NS_WSMAN, "Option"))
			continue;
		if (req->n_options == MAX_OPTIONS) {
			set_fault(req, WRM_FAULT_INVALID_HEADER,
			    "Too many options. ");
			return;
		}
		o = &req->options[req->n_options];
		if ((o->name = wrm_xml_attr(c, "Name")) == NULL)
			continue;
		o->value = wrm_xml_text(c, false);
		mc = wrm_xml_attr(c, "MustComply");
		o->must_comply = wrm_parse_bool(mc) == 1;
		free(mc);
		req->n_options++;
	}
}

/* Namespaces whose headers we know; others marked mustUnderstand fault. */
static bool
known_ns(const xmlNode *n)
{
	static const char *const known[] = {
		NS_ADDR, NS_WSMAN, NS_WSMV, NS_SHELL, NS_TRANSFER, NS_ENUM,
		NS_EVENTING, NS_POWERSHELL, NS_CONFIG,
	};
	size_t i;

	if (n->ns == NULL || n->ns->href == NULL)
		return true;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp((const char *)n->ns->href, known[i]) == 0)
			return true;
	return false;
}

static void
parse_header_element(struct wrm_soap_req *req, const xmlNode *h)
{
	char *s, *mu;
	xmlChar *v;

	if (wrm_xml_is(h, NS_ADDR, "Action")) {
		free(req->action);
		req->action = wrm_xml_text(h, false);
	} else if (wrm_xml_is(h, NS_ADDR, "MessageID")) {
		free(req->message_id);
		req->message_id = wrm_xml_text(h, false);
	} else if (wrm_xml_is(h, NS_ADDR, "To")) {
		free(req->to);
		req->to = wrm_xml_text(h, false);
	} else if (wrm_xml_is(h, NS_ADDR, "ReplyTo")) {
		free(req->reply_to);
		req->reply_to = wrm_xml_text(wrm_xml_child(h, NS_ADDR,
		    "Address"), false);
		if (req->reply_to == NULL)
			req->reply_to = strdup("");
	} else if (wrm_xml_is(h, NS_WSMAN, "ResourceURI")) {
		free(req->resource_uri);
		req->resource_uri = wrm_xml_text(h, false);
	} else if (wrm_xml_is(h, NS_WSMAN, "SelectorSet")) {
		parse_selectors(req, h);
	} else if (wrm_xml_is(h, NS_WSMAN, "OptionSet")) {
		parse_options(req, h);
	} else if (wrm_xml_is(h, NS_WSMAN, "MaxEnvelopeSize")) {
		s = wrm_xml_text(h, false);
		if (s == NULL || wrm_parse_u64(s, &req->max_envelope_size) != 0)
			set_fault(req, WRM_FAULT_INVALID_HEADER, NULL);
		else if (req->max_envelope_size < 8192)
			set_fault(req, WRM_FAULT_MIN_ENVELOPE, NULL);
		free(s);
	} else if (wrm_xml_is(h, NS_WSMAN, "OperationTimeout")) {
		s = wrm_xml_text(h, false);
		req->has_timeout = true;
		if (s == NULL || wrm_duration_parse(s,
		    &req->operation_timeout_ms) != 0) {
			char msg[256];
			int cut = 0;

			/* Quote at most 64 bytes, cut on a UTF-8 boundary. */
			if (s != NULL) {
				cut = (int)strnlen(s, 64);
				if (s[cut] != '\0')
					while (cut > 0 &&
					    ((unsigned char)s[cut] & 0xc0) ==
					    0x80)
						cut--;
			}
			snprintf(msg, sizeof(msg), "The WS-Management service "
			    "cannot process the request. The XML contains an "
			    "invalid timeout field in the SOAP header: %.*s. ",
			    cut, s ? s : "");
			set_fault(req, WRM_FAULT_INVALID_TIMEOUT, msg);
		}
		free(s);
	} else if (wrm_xml_is(h, NS_WSMAN, "Locale")) {
		free(req->locale);
		req->locale = xml_lang(h);
	} else if (wrm_xml_is(h, NS_WSMV, "DataLocale")) {
		free(req->data_locale);
		req->data_locale = xml_lang(h);
	} else if (wrm_xml_is(h, NS_WSMV, "SessionId")) {
		free(req->session_id);
		req->session_id = wrm_xml_text(h, false);
	} else if (wrm_xml_is(h, NS_SHELL, "CompressionType")) {
		free(req->compression_type);
		req->compression_type = wrm_xml_text(h, false);
	} else if (!known_ns(h)) {
		v = xmlGetNsProp(h, (const xmlChar *)"mustUnderstand",
		    (const xmlChar *)NS_SOAP);
		mu = v ? strdup((const char *)v) : NULL;
		xmlFree(v);
		if (wrm_parse_bool(mu) == 1)
			set_fault(req, WRM_FAULT_MUST_UNDERSTAND, NULL);
		free(mu);
	}
}

static void
validate(struct wrm_soap_req *req)
{
	if (req->is_identify)
		return;
	if (req->message_id == NULL || req->action == NULL ||
	    req->reply_to == NULL) {
		set_fault(req, WRM_FAULT_HEADER_REQUIRED, NULL);
		return;
	}
	if (req->message_id[0] == '\0' ||
	    strlen(req->message_id) > MAX_MESSAGE_ID) {
		set_fault(req, WRM_FAULT_INVALID_HEADER, NULL);
		return;
	}
	if (strcmp(req->reply_to, ADDR_ANONYMOUS) != 0)
		set_fault(req, WRM_FAULT_ADDRESSING_MODE, NULL);
}

static bool
has_dtd(const uint8_t *p, size_t n)
{
	return memmem(p, n, "<!DOCTYPE", 9) != NULL ||
	    memmem(p, n, "<!ENTITY", 8) != NULL;
}

int
wrm_soap_parse(const uint8_t *body, size_t len, bool utf16,
    struct wrm_soap_req *req)
{
	struct wrm_buf conv;
	const uint8_t *p = body;
	xmlNode *root, *c;
	int r;

	memset(req, 0, sizeof(req[0]));
	req->selectors = calloc(MAX_SELECTORS, sizeof(*req->selectors));
	req->options = calloc(MAX_OPTIONS, sizeof(*req->options));
	if (req->selectors == NULL || req->options == NULL)
		return WRM_ERR_ALLOC;
	wrm_buf_init(&conv, 0);
	if (utf16 || (len >= 2 && ((body[0] == 0xff && body[1] == 0xfe) ||
	    (body[0] == 0xfe && body[1] == 0xff)))) {
		if ((r = utf16_to_utf8(body, len, &conv)) != 0) {
			wrm_buf_free(&conv);
			if (r == WRM_ERR_ALLOC)
				return r;
			set_fault(req, WRM_FAULT_INVALID_XML, NULL);
			return 0;
		}
		p = wrm_buf_ptr(&conv);
		len = wrm_buf_len(&conv);
	}
	if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
		p += 3;
		len -= 3;
	}
	if (has_dtd(p, len)) {
		set_fault(req, WRM_FAULT_INVALID_XML, "Document type "
		    "declarations and entities are not accepted. ");
		wrm_buf_free(&conv);
		return 0;
	}
	if (len > INT32_MAX)
		req->doc = NULL;
	else
		req->doc = xmlReadMemory((const char *)p, (int)len, NULL,
		    "UTF-8", XML_PARSE_NONET | XML_PARSE_NOCDATA |
		    XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
		    XML_PARSE_IGNORE_ENC | XML_PARSE_COMPACT);
	wrm_buf_free(&conv);
	if (req->doc == NULL ||
	    (root = xmlDocGetRootElement(req->doc)) == NULL) {
		set_fault(req, WRM_FAULT_INVALID_XML, NULL);
		return 0;
	}
	if (wrm_xml_is(root, NS_SOAP11, "Envelope")) {
		set_fault(req, WRM_FAULT_VERSION_MISMATCH, NULL);
		return 0;
	}
	if (!wrm_xml_is(root, NS_SOAP, "Envelope")) {
		set_fault(req, WRM_FAULT_INVALID_XML, NULL);
		return 0;
	}
	req->header = wrm_xml_child(root, NS_SOAP, "Header");
	req->body = wrm_xml_child(root, NS_SOAP, "Body");
	if (req->body == NULL) {
		set_fault(req, WRM_FAULT_INVALID_XML, NULL);
		return 0;
	}
	for (c = req->body->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE) {
			req->payload = c;
			break;
		}
	if (req->header != NULL)
		for (c = req->header->children; c != NULL; c = c->next)
			if (c->type == XML_ELEMENT_NODE)
				parse_header_element(req, c);
	if (req->action == NULL && req->payload != NULL &&
	    (wrm_xml_is(req->payload, NS_IDENTITY, "Identify") ||
	    wrm_xml_is(req->payload, NS_IDENTIFY_TYPO, "Identify")))
		req->is_identify = true;
	validate(req);
	return 0;
}

void
wrm_soap_req_free(struct wrm_soap_req *req)
{
	size_t i;

	if (req->doc != NULL)
		xmlFreeDoc(req->doc);
	if (req->selectors != NULL)
		for (i = 0; i < req->n_selectors; i++) {
			free(req->selectors[i].name);
			free(req->selectors[i].value);
		}
	if (req->options != NULL)
		for (i = 0; i < req->n_options; i++) {
			free(req->options[i].name);
			free(req->options[i].value);
		}
	free(req->selectors);
	free(req->options);
	free(req->action);
	free(req->message_id);
	free(req->reply_to);
	free(req->to);
	free(req->resource_uri);
	free(req->locale);
	free(req->data_locale);
	free(req->session_id);
	free(req->compression_type);
	free(req->fault_message);
	memset(req, 0, sizeof(*req));
}

const char *
wrm_soap_selector(const struct wrm_soap_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->n_selectors; i++)
		if (strcasecmp(req->selectors[i].name, name) == 0)
			return req->selectors[i].value;
	return NULL;
}

const struct wrm_soap_option *
wrm_soap_option(const struct wrm_soap_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->n_options; i++)
		if (strcasecmp(req->options[i].name, name) == 0)
			return &req->options[i];
	return NULL;
}

int
wrm_soap_begin(struct wrm_buf *out, const char *action,
    const char *relates_to, unsigned ns)
{
	char id[WRM_GUID_STRLEN + 1];
	int r = 0;

	wrm_guid_new(id);
	r = wrm_buf_puts(out, "<s:Envelope xml:lang=\"en-US\" xmlns:s=\""
	    NS_SOAP "\" xmlns:a=\"" NS_ADDR "\"");
	if (r == 0 && (ns & WRM_NS_X))
		r = wrm_buf_puts(out, " xmlns:x=\"" NS_TRANSFER "\"");
	if (r == 0 && (ns & WRM_NS_E))
		r = wrm_buf_puts(out, " xmlns:e=\"" NS_EVENTING "\"");
	if (r == 0 && (ns & WRM_NS_N))
		r = wrm_buf_puts(out, " xmlns:n=\"" NS_ENUM "\"");
	if (r == 0)
		r = wrm_buf_puts(out, " xmlns:w=\"" NS_WSMAN "\"");
	if (r == 0 && (ns & WRM_NS_RSP))
		r = wrm_buf_puts(out, " xmlns:rsp=\"" NS_SHELL "\"");
	if (r == 0 && (ns & WRM_NS_P))
		r = wrm_buf_puts(out, " xmlns:p=\"" NS_WSMV "\"");
	if (r == 0 && (ns & WRM_NS_CFG))
		r = wrm_buf_puts(out, " xmlns:cfg=\"" NS_CONFIG "\"");
	if (r == 0 && action != NULL)
		r = wrm_buf_printf(out, "><s:Header><a:Action>%s</a:Action>"
		    "<a:MessageID>uuid:%s</a:MessageID><a:To>" ADDR_ANONYMOUS
		    "</a:To>", action, id);
	else if (r == 0)
		r = wrm_buf_puts(out, "><s:Header>");
	if (r == 0 && relates_to != NULL) {
		r = wrm_buf_puts(out, "<a:RelatesTo>");
		if (r == 0)
			r = wrm_buf_put_xml(out, relates_to);
		if (r == 0)
			r = wrm_buf_puts(out, "</a:RelatesTo>");
	}
	if (r == 0)
		r = wrm_buf_puts(out, "</s:Header><s:Body>");
	return r;
}

int
wrm_soap_end(struct wrm_buf *out)
{
	return wrm_buf_puts(out, "</s:Body></s:Envelope>");
}

static int
put_wmierror(struct wrm_buf *out, uint32_t code, const char *message)
{
	int r;

	r = wrm_buf_printf(out, "<p:MSFT_WmiError b:IsCIM_Error=\"true\" "
	    "xmlns:xsi=\"" NS_XSI "\" xmlns:b=\"" NS_CIMBINDING "\" "
	    "xmlns:p=\"" NS_WMIERROR "\" xmlns:cim=\"" NS_CIMCOMMON "\" "
	    "xsi:type=\"p:MSFT_WmiError_Type\">"
	    "<p:CIMStatusCode xsi:type=\"cim:cimUnsignedInt\">27"
	    "</p:CIMStatusCode><p:Message xsi:type=\"cim:cimString\">");
	if (r == 0)
		r = wrm_buf_put_xml(out, message);
	if (r == 0)
		r = wrm_buf_printf(out, "</p:Message><p:MessageID "
		    "xsi:type=\"cim:cimString\">HRESULT 0x%08x</p:MessageID>"
		    "<p:error_Category xsi:type=\"cim:cimUnsignedInt\">30"
		    "</p:error_Category><p:error_Code "
		    "xsi:type=\"cim:cimUnsignedInt\">%u</p:error_Code>"
		    "<p:error_Type xsi:type=\"cim:cimString\">HRESULT"
		    "</p:error_Type></p:MSFT_WmiError>", code, code);
	return r;
}

int
wrm_soap_fault(struct wrm_buf *out, const struct wrm_fault_info *fi,
    const char *relates_to, const char *machine)
{
	const struct wrm_fault_def *d = wrm_fault_def(fi->id);
	const char *reason, *message, *provider, *path;
	uint32_t code = fi->code ? fi->code : d->wsman_code;
	int r;

	reason = d->message != NULL || fi->message == NULL ? d->reason :
	    fi->message;
	message = fi->message ? fi->message : d->message ? d->message :
	    d->reason;
	provider = fi->provider ? fi->provider : d->provider;
	path = fi->provider_path ? fi->provider_path : d->provider_path;
	r = wrm_soap_begin(out, d->action, relates_to,
	    WRM_NS_X | WRM_NS_E | WRM_NS_N | WRM_NS_P);
	if (r == 0)
		r = wrm_buf_printf(out, "<s:Fault><s:Code><s:Value>%s"
		    "</s:Value>", d->code);
	if (r == 0 && d->subcode != NULL)
		r = wrm_buf_printf(out, "<s:Subcode><s:Value>%s</s:Value>"
		    "</s:Subcode>", d->subcode);
	if (r == 0)
		r = wrm_buf_puts(out, "</s:Code><s:Reason><s:Text "
		    "xml:lang=\"en-US\">");
	if (r == 0)
		r = wrm_buf_put_xml(out, reason);
	if (r == 0)
		r = wrm_buf_puts(out, "</s:Text></s:Reason><s:Detail>");
	if (r == 0 && d->detail != NULL)
		r = wrm_buf_printf(out, "<w:FaultDetail>" URI_FAULT_DETAIL
		    "%s</w:FaultDetail>", d->detail);
	if (r == 0 && code != 0) {
		r = wrm_buf_printf(out, "<f:WSManFault xmlns:f=\"" NS_FAULT
		    "\" Code=\"%u\" Machine=\"", code);
		if (r == 0)
			r = wrm_buf_put_xml(out, machine);
		if (r == 0)
			r = wrm_buf_puts(out, "\"><f:Message>");
		if (r == 0 && provider != NULL) {
			r = wrm_buf_puts(out, "<f:ProviderFault provider=\"");
			if (r == 0)
				r = wrm_buf_put_xml(out, provider);
			if (r == 0)
				r = wrm_buf_puts(out, "\" path=\"");
			if (r == 0)
				r = wrm_buf_put_xml(out, path ? path : "");
			if (r == 0)
				r = wrm_buf_puts(out, "\">");
		}
		if (r == 0)
			r = wrm_buf_put_xml(out, message);
		if (r == 0 && provider != NULL)
			r = wrm_buf_puts(out, "</f:ProviderFault>");
		if (r == 0)
			r = wrm_buf_puts(out, "</f:Message></f:WSManFault>");
	}
	if (r == 0 && fi->wmierror)
		r = put_wmierror(out, code, message);
	if (r == 0)
		r = wrm_buf_puts(out, "</s:Detail></s:Fault>");
	if (r == 0)
		r = wrm_soap_end(out);
	return r;
}
