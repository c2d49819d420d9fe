/*
 * SOAP 1.2 / WS-Addressing / WS-Management envelopes.
 *
 * Parsing is hardened: no DTD (a DOCTYPE is refused before libxml2 sees
 * the document), no entity substitution, no network, libxml2's depth
 * limit, and the caller bounds the size (MaxEnvelopeSizekb) before
 * calling.  UTF-16 bodies are converted to UTF-8 first.  Namespaces are
 * matched by URI.  Header values are copied out and trimmed; the body
 * stays in the libxml2 tree for the handler to read with the helpers
 * below, and is freed with the request.
 *
 * Writing builds text directly into a wrm_buf with the exact header shape
 * Windows uses (Action, MessageID, To, RelatesTo).
 */
#ifndef WRM_SOAP_H
#define WRM_SOAP_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "fault.h"

struct wrm_soap_selector {
	char *name;
	char *value;
};

struct wrm_soap_option {
	char *name;
	char *value;
	bool must_comply;
};

struct wrm_soap_req {
	xmlDoc *doc;
	xmlNode *header;
	xmlNode *body;		/* s:Body */
	xmlNode *payload;	/* first element child of s:Body, or NULL */
	bool is_identify;
	char *action;
	char *message_id;
	char *reply_to;
	char *to;
	char *resource_uri;
	struct wrm_soap_selector *selectors;
	size_t n_selectors;
	struct wrm_soap_option *options;
	size_t n_options;
	uint64_t max_envelope_size;	/* 0 when absent */
	bool has_timeout;
	uint64_t operation_timeout_ms;
	char *locale;
	char *data_locale;
	char *session_id;
	char *compression_type;
	/* Set by wrm_soap_parse when the envelope itself is at fault. */
	enum wrm_fault fault;
	char *fault_message;
};

/*
 * Parse body (len bytes, charset from the Content-Type: "UTF-8" or
 * "UTF-16").  Returns 0 with req filled; req->fault != NONE means the
 * envelope was understood enough to answer with that fault (RelatesTo is
 * set when a MessageID was readable).  Returns WRM_ERR_ALLOC only when
 * memory ran out.
 */
int wrm_soap_parse(const uint8_t *body, size_t len, bool utf16,
    struct wrm_soap_req *req);
void wrm_soap_req_free(struct wrm_soap_req *req);

const char *wrm_soap_selector(const struct wrm_soap_req *req,
    const char *name);
const struct wrm_soap_option *wrm_soap_option(const struct wrm_soap_req *req,
    const char *name);

/* Tree helpers: element children by namespace URI and local name. */
xmlNode *wrm_xml_child(const xmlNode *parent, const char *ns,
    const char *name);
xmlNode *wrm_xml_next(const xmlNode *node, const char *ns, const char *name);
bool wrm_xml_is(const xmlNode *node, const char *ns, const char *name);
/* Text content, malloc'd; trimmed unless raw.  NULL node gives NULL. */
char *wrm_xml_text(const xmlNode *node, bool raw);
/* Attribute by local name (any namespace or none), malloc'd, or NULL. */
char *wrm_xml_attr(const xmlNode *node, const char *name);

/* Response writing. */
#define WRM_NS_X	0x01u	/* transfer */
#define WRM_NS_RSP	0x02u	/* shell */
#define WRM_NS_N	0x04u	/* enumeration */
#define WRM_NS_E	0x08u	/* eventing */
#define WRM_NS_P	0x10u	/* wsmv */
#define WRM_NS_CFG	0x20u

/* Envelope start through "<s:Body>"; relates_to may be NULL. */
int wrm_soap_begin(struct wrm_buf *out, const char *action,
    const char *relates_to, unsigned ns);
int wrm_soap_end(struct wrm_buf *out);
/* A whole fault envelope. */
int wrm_soap_fault(struct wrm_buf *out, const struct wrm_fault_info *fi,
    const char *relates_to, const char *machine);

/* UTF-8 -> UTF-16LE with BOM, for -UseUTF16 clients. */
int wrm_utf8_to_utf16le(const uint8_t *in, size_t len, struct wrm_buf *out);

void wrm_soap_init(void);

#endif
