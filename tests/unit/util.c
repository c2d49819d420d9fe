#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns.h"
#include "util.h"

char *
tu_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail_msg("out of memory");
	return s;
}

static char *
tree_path(const char *env, const char *def, const char *rel)
{
	const char *top = getenv(env);

	if (top == NULL || *top == '\0')
		top = def;
	return tu_asprintf("%s/%s", top, rel);
}

char *
tu_srcpath(const char *rel)
{
	return tree_path("WINRMD_SRCDIR", WRM_TEST_SRCDIR, rel);
}

char *
tu_buildpath(const char *rel)
{
	return tree_path("WINRMD_BUILDDIR", WRM_TEST_BUILDDIR, rel);
}

uint8_t *
tu_read_file(const char *path, size_t *len_r)
{
	struct stat st;
	uint8_t *p;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	if ((p = malloc((size_t)st.st_size + 1)) == NULL)
		fail_msg("out of memory");
	while (got < (size_t)st.st_size) {
		n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_msg("read %s: %s", path, n < 0 ? strerror(errno) :
			    "short file");
		got += (size_t)n;
	}
	close(fd);
	p[got] = '\0';
	*len_r = got;
	return p;
}

uint8_t *
tu_request_body(const char *name, size_t *len_r)
{
	char *rel = tu_asprintf("tests/data/client-requests/%s", name);
	char *path = tu_srcpath(rel);
	uint8_t *file, *body;
	const char *p, *hdr_end = NULL, *cl;
	size_t len, clen;

	file = tu_read_file(path, &len);
	p = (const char *)file;
	/* Notes first: lines starting with "# ". */
	while (strncmp(p, "# ", 2) == 0 && (p = strchr(p, '\n')) != NULL)
		p++;
	if (p == NULL || (hdr_end = strstr(p, "\n\n")) == NULL)
		fail_msg("%s: no header block", name);
	for (cl = p; cl < hdr_end; cl = strchr(cl, '\n') + 1)
		if (strncasecmp(cl, "Content-Length:", 15) == 0)
			break;
	if (cl >= hdr_end)
		fail_msg("%s: no Content-Length", name);
	clen = strtoul(cl + 15, NULL, 10);
	hdr_end += 2;
	if ((size_t)(hdr_end - (const char *)file) + clen > len)
		fail_msg("%s: body shorter than Content-Length", name);
	if ((body = malloc(clen + 1)) == NULL)
		fail_msg("out of memory");
	memcpy(body, hdr_end, clen);
	body[clen] = '\0';
	*len_r = clen;
	free(file);
	free(path);
	free(rel);
	return body;
}

void
tu_write_file(const char *path, const void *p, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		fail_msg("create %s: %s", path, strerror(errno));
	if (len > 0 && fwrite(p, 1, len, f) != len)
		fail_msg("write %s: %s", path, strerror(errno));
	if (fclose(f) != 0)
		fail_msg("close %s: %s", path, strerror(errno));
}

char *
tu_mkdtemp(void)
{
	const char *tmp = getenv("TMPDIR");
	char *p;

	p = tu_asprintf("%s/wrm-unit.XXXXXX", tmp != NULL && *tmp != '\0' ?
	    tmp : "/tmp");
	if (mkdtemp(p) == NULL)
		fail_msg("mkdtemp %s: %s", p, strerror(errno));
	return p;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
tu_rmtree(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Unquote one YAML scalar written on one line, plain or single-quoted. */
static char *
yaml_scalar(const char *s)
{
	char *r, *w;

	if (*s != '\'')
		return tu_asprintf("%s", s);
	r = w = tu_asprintf("%s", s + 1);
	for (s = r; *s != '\0'; s++) {
		if (*s == '\'' && s[1] == '\'') {
			*w++ = '\'';
			s++;
		} else if (*s == '\'')
			break;
		else
			*w++ = *s;
	}
	*w = '\0';
	return r;
}

static int
yml_only(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '_' && de->d_name[0] != '.' && n > 4 &&
	    strcmp(de->d_name + n - 4, ".yml") == 0;
}

size_t
tu_foreach_trace(tu_trace_fn fn, void *arg)
{
	char *dir = tu_srcpath("tests/data/windows-traces");
	char *path, *text, *line, *next, *req = NULL, *resp;
	struct dirent **names;
	size_t len, count = 0;
	int i, n;

	if ((n = scandir(dir, &names, yml_only, alphasort)) < 0)
		fail_msg("%s: %s", dir, strerror(errno));
	for (i = 0; i < n; i++) {
		path = tu_asprintf("%s/%s", dir, names[i]->d_name);
		text = (char *)tu_read_file(path, &len);
		/* "- request: XML" then "  response: XML", one line each */
		for (line = text; line != NULL && *line != '\0'; line = next) {
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			if (strncmp(line, "- request: ", 11) == 0) {
				free(req);
				req = yaml_scalar(line + 11);
			} else if (strncmp(line, "  response: ", 12) == 0 &&
			    req != NULL) {
				resp = yaml_scalar(line + 12);
				fn(names[i]->d_name, req, resp, arg);
				free(resp);
				free(req);
				req = NULL;
				count++;
			}
		}
		free(req);
		req = NULL;
		free(text);
		free(path);
		free(names[i]);
	}
	free(names);
	free(dir);
	return count;
}

static xmlXPathObject *
xp_eval(xmlDoc *doc, const char *expr)
{
	static const char *const ns[][2] = {
		{ "s", NS_SOAP }, { "a", NS_ADDR }, { "w", NS_WSMAN },
		{ "p", NS_WSMV }, { "f", NS_FAULT }, { "rsp", NS_SHELL },
		{ "wmi", NS_WMIERROR },
	};
	xmlXPathContext *ctx = xmlXPathNewContext(doc);
	xmlXPathObject *o;
	size_t i;

	if (ctx == NULL)
		fail_msg("out of memory");
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		xmlXPathRegisterNs(ctx, (const xmlChar *)ns[i][0],
		    (const xmlChar *)ns[i][1]);
	o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	xmlXPathFreeContext(ctx);
	if (o == NULL)
		fail_msg("bad XPath %s", expr);
	return o;
}

char *
tu_xp_text(xmlDoc *doc, const char *expr)
{
	xmlXPathObject *o = xp_eval(doc, expr);
	xmlChar *t;
	char *r = NULL;

	if (o->nodesetval != NULL && o->nodesetval->nodeNr > 0) {
		t = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		r = tu_asprintf("%s", t != NULL ? (const char *)t : "");
		xmlFree(t);
	}
	xmlXPathFreeObject(o);
	return r;
}

int
tu_xp_count(xmlDoc *doc, const char *expr)
{
	xmlXPathObject *o = xp_eval(doc, expr);
	int n = o->nodesetval != NULL ? o->nodesetval->nodeNr : 0;

	xmlXPathFreeObject(o);
	return n;
}

xmlNode *
tu_xp_node(xmlDoc *doc, const char *expr)
{
	xmlXPathObject *o = xp_eval(doc, expr);
	xmlNode *n = NULL;

	if (o->nodesetval != NULL && o->nodesetval->nodeNr > 0)
		n = o->nodesetval->nodeTab[0];
	xmlXPathFreeObject(o);
	return n;
}
