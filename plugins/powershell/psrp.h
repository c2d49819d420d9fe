/*
 * PSRP framing, as far as a bridge needs it (MS-PSRP 2.2.1, 2.2.4).
 *
 * A fragment is ObjectId (u64 BE), FragmentId (u64 BE), flags (Start 1,
 * End 2), BlobLength (u32 BE) and the blob.  The first blob of a message
 * starts with the message header: destination (u32 LE), type (u32 LE),
 * RPID and PID (16 bytes each, .NET GUID byte order).  Fragments pass
 * through unchanged; only headers are read.
 */
#ifndef PSRP_H
#define PSRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSRP_FRAG_HDR	21
#define PSRP_MSG_HDR	40
#define PSRP_START	0x1
#define PSRP_END	0x2

enum psrp_type {
	PSRP_SESSION_CAPABILITY = 0x00010002,
	PSRP_INIT_RUNSPACEPOOL = 0x00010004,
	PSRP_PUBLIC_KEY = 0x00010005,
	PSRP_ENCRYPTED_SESSION_KEY = 0x00010006,
	PSRP_PUBLIC_KEY_REQUEST = 0x00010007,
	PSRP_CONNECT_RUNSPACEPOOL = 0x00010008,
	PSRP_SET_MAX_RUNSPACES = 0x00021002,
	PSRP_SET_MIN_RUNSPACES = 0x00021003,
	PSRP_RUNSPACE_AVAILABILITY = 0x00021004,
	PSRP_RUNSPACEPOOL_STATE = 0x00021005,
	PSRP_CREATE_PIPELINE = 0x00021006,
	PSRP_GET_AVAILABLE_RUNSPACES = 0x00021007,
	PSRP_USER_EVENT = 0x00021008,
	PSRP_APPLICATION_PRIVATE_DATA = 0x00021009,
	PSRP_GET_COMMAND_METADATA = 0x0002100A,
	PSRP_RUNSPACEPOOL_INIT_DATA = 0x0002100B,
	PSRP_RESET_RUNSPACE_STATE = 0x0002100C,
	PSRP_RUNSPACEPOOL_HOST_CALL = 0x00021100,
	PSRP_RUNSPACEPOOL_HOST_RESPONSE = 0x00021101,
	PSRP_PIPELINE_INPUT = 0x00041002,
	PSRP_END_OF_PIPELINE_INPUT = 0x00041003,
	PSRP_PIPELINE_OUTPUT = 0x00041004,
	PSRP_ERROR_RECORD = 0x00041005,
	PSRP_PIPELINE_STATE = 0x00041006,
	PSRP_DEBUG_RECORD = 0x00041007,
	PSRP_VERBOSE_RECORD = 0x00041008,
	PSRP_WARNING_RECORD = 0x00041009,
	PSRP_PROGRESS_RECORD = 0x00041010,
	PSRP_INFORMATION_RECORD = 0x00041011,
	PSRP_PIPELINE_HOST_CALL = 0x00041100,
	PSRP_PIPELINE_HOST_RESPONSE = 0x00041101,
};

struct psrp_frag {
	uint64_t object_id;
	uint64_t fragment_id;
	uint8_t flags;
	const uint8_t *blob;
	uint32_t blob_len;
	const uint8_t *raw;	/* header + blob */
	size_t raw_len;
};

struct psrp_msg_hdr {
	uint32_t destination;
	uint32_t type;
	uint8_t rpid[16];
	uint8_t pid[16];
	const uint8_t *data;	/* within the first blob */
	size_t data_len;
};

/* Take one fragment from *p; false at the end or on a malformed one. */
bool psrp_frag_next(const uint8_t **p, size_t *left, struct psrp_frag *f,
    bool *bad);
/* Whether p holds one or more whole fragments and nothing else. */
bool psrp_frags_whole(const uint8_t *p, size_t len);
/* Read the message header at the start of a Start fragment's blob. */
bool psrp_msg_header(const struct psrp_frag *f, struct psrp_msg_hdr *h);
bool psrp_guid_is_zero(const uint8_t g[16]);
/* .NET order bytes to lower-case text ("xxxxxxxx-xxxx-..."), 37 bytes. */
void psrp_guid_text(const uint8_t g[16], char out[37]);
/* Value of a top-level <TAG N="name">value</TAG> in CLIXML; NULL if absent. */
char *psrp_clixml_value(const uint8_t *data, size_t len, const char *tag,
    const char *name);
/* Append one whole fragment to out. */
size_t psrp_frag_write(uint8_t *out, uint64_t obj, uint64_t frag,
    uint8_t flags, const uint8_t *blob, uint32_t len);
const char *psrp_type_name(uint32_t type);

#endif
