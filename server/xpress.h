/*
 * Xpress compression of WinRM shell streams.
 *
 * When a shell is created with rsp:CompressionType "xpress", the decoded
 * content of every rsp:Stream element in Send and ReceiveResponse is framed
 * and compressed as follows.  This module implements both layers.
 *
 * Framing (one Stream element's bytes): a sequence of chunks, each
 *
 *	u16 LE	uncompressed length of the chunk - 1	(1..65536 bytes)
 *	u16 LE	payload length - 1			(1..65536 bytes)
 *	payload
 *
 * A payload as long as its uncompressed length holds the bytes as they are
 * (a stored chunk); any other payload is the LZ77+Huffman encoding of that
 * chunk alone.  Chunks never span two Stream elements.
 *
 * LZ77+Huffman ("Xpress Huffman", MS-XCA 2.1 and 2.2): blocks of 65536
 * output bytes, each opening with a 256-byte table of 512 four-bit code
 * lengths, followed by a bit stream read in little-endian 16-bit words,
 * most significant bit first, with long match lengths stored as whole
 * bytes between the words.  The uncompressed size must be known in advance
 * (the framing supplies it).
 *
 * Conventions: functions return 0 or a negative WRM_ERR_* from err.h:
 * WRM_ERR_PARSE for malformed input, WRM_ERR_LIMIT when a size bound would
 * be exceeded, WRM_ERR_ALLOC when memory runs out, WRM_ERR_INTERNAL for a
 * broken precondition (NULL data with a non-zero length).  Out-parameters
 * are set only on success; buffers returned through them are allocated
 * with malloc() and belong to the caller, who releases them with free().
 * Nothing here keeps global mutable state, so every function may be called
 * from any thread.
 */
#ifndef WRM_XPRESS_H
#define WRM_XPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WRM_XPRESS_CHUNK_MAX	65536	/* uncompressed bytes per chunk */
#define WRM_XPRESS_CHUNK_HDR	4	/* bytes of framing per chunk */
#define WRM_XPRESS_MIN_PACK	266	/* shorter chunks are always stored */

/*
 * Size of the stored (level 0) framing of in_len bytes: the data plus
 * WRM_XPRESS_CHUNK_HDR bytes per started chunk.  Level 1 output is never
 * larger.  Returns SIZE_MAX if the size is not representable.
 */
size_t wrm_xpress_frame_bound(size_t in_len);

/*
 * Decode a framed Stream payload.  The whole output is allocated once, after
 * the chunk headers were checked and their uncompressed lengths summed;
 * WRM_ERR_LIMIT if that sum exceeds max_out.  Empty input decodes to an
 * empty (but allocated) buffer.  Bytes left over after the last symbol a
 * compressed chunk needs are ignored.
 */
int wrm_xpress_frame_decode(const uint8_t *in, size_t in_len,
    uint8_t **out_r, size_t *out_len_r, size_t max_out);

/*
 * Frame in_len bytes.  level <= 0 stores every chunk; level >= 1 compresses
 * each chunk of at least WRM_XPRESS_MIN_PACK bytes and keeps the result only
 * when it is smaller than the chunk.  The output never exceeds
 * wrm_xpress_frame_bound(in_len) bytes.
 */
int wrm_xpress_frame_encode(const uint8_t *in, size_t in_len, int level,
    uint8_t **out_r, size_t *out_len_r);

/*
 * Decode an LZ77+Huffman stream into exactly out_len bytes at out.
 * Decoding stops as soon as out_len bytes were produced; the end-of-data
 * symbol and padding after that point are not required.  Reading past
 * in_len, a match reaching before the start of the output or beyond
 * out_len, and an incomplete or over-subscribed code table are
 * WRM_ERR_PARSE.  On error the contents of out are unspecified.
 */
int wrm_xpress_huff_decompress(const uint8_t *in, size_t in_len,
    uint8_t *out, size_t out_len);

/*
 * Encode in_len bytes (at most UINT32_MAX - 65536) as an LZ77+Huffman
 * stream, ending with the end-of-data symbol.  Matches never cross a
 * 65536-byte block boundary, so any conforming decoder accepts the result.
 */
int wrm_xpress_huff_compress(const uint8_t *in, size_t in_len,
    uint8_t **out_r, size_t *out_len_r);

#endif
