/*
 * Test helper: frame stdin as a WinRM xpress stream payload (MS-XCA
 * LZ77+Huffman chunks where that is smaller) on stdout, with the daemon's
 * own encoder, so integration tests can send really compressed data.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "xpress.h"

int
main(void)
{
	struct wrm_buf in;
	uint8_t chunk[65536], *out;
	size_t n, out_len;

	wrm_buf_init(&in, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (wrm_buf_put(&in, chunk, n) != 0)
			return 1;
	if (wrm_xpress_frame_encode(wrm_buf_ptr(&in), wrm_buf_len(&in), 1, &out,
	    &out_len) != 0)
		return 1;
	if (fwrite(out, 1, out_len, stdout) != out_len)
		return 1;
	free(out);
	wrm_buf_free(&in);
	return 0;
}
