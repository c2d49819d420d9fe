/*
 * Helpers shared by the unit tests: locating the source and build trees,
 * reading files, extracting request bodies from tests/data/client-requests,
 * and scratch directories.  Every helper fails the running test (cmocka
 * fail_msg) instead of returning an error.
 */
#ifndef WRM_TEST_UTIL_H
#define WRM_TEST_UTIL_H

#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

/* $WINRMD_SRCDIR/rel (or the configured source tree); malloc'd. */
char *tu_srcpath(const char *rel);
/* $WINRMD_BUILDDIR/rel (or the configured build tree); malloc'd. */
char *tu_buildpath(const char *rel);
/* The whole file, NUL-terminated (the NUL is not counted in *len_r). */
uint8_t *tu_read_file(const char *path, size_t *len_r);
/*
 * The body of tests/data/client-requests/NAME: the Content-Length bytes
 * after the blank line ending the headers, NUL-terminated.
 */
uint8_t *tu_request_body(const char *name, size_t *len_r);
/* Write len bytes to path (created or truncated). */
void tu_write_file(const char *path, const void *p, size_t len);
/* A new empty directory under $TMPDIR; malloc'd path. */
char *tu_mkdtemp(void);
/* Remove a directory tree made by tu_mkdtemp. */
void tu_rmtree(const char *path);
/*
 * Call fn for every recorded exchange of tests/data/windows-traces, in
 * file name order, with the request and response envelopes as text.
 * Returns the number of exchanges.
 */
typedef void (*tu_trace_fn)(const char *file, const char *request,
    const char *response, void *arg);
size_t tu_foreach_trace(tu_trace_fn fn, void *arg);
/*
 * XPath over a document, with the prefixes s a w p f rsp wmi bound to
 * the SOAP, addressing, WS-Man, WSMV, WSManFault, shell and
 * MSFT_WmiError namespaces.  tu_xp_text returns the first match's text
 * (malloc'd) or NULL.
 */
char *tu_xp_text(xmlDoc *doc, const char *expr);
int tu_xp_count(xmlDoc *doc, const char *expr);
xmlNode *tu_xp_node(xmlDoc *doc, const char *expr);
/* asprintf that fails the test on error. */
char *tu_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
