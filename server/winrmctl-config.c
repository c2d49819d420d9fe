/*
 * winrmctl config: session configurations, each in its own file
 * sessions.d/NAME.conf next to the configuration file, as the
 * Register-, Unregister-, Enable-, Disable-, Get- and
 * Set-PSSessionConfiguration cmdlets keep them on Windows.
 *
 * Every change is checked before it is written: the whole configuration
 * is loaded the way winrmd loads it, with the new text of the one file
 * in place of the old (ctl_conf_load), then checked as "winrmd -t" would
 * check the configuration concerned, plugin options included.  Files are
 * written through a temporary file and rename(2); no other file is
 * touched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "misc.h"
#include "plugin-load.h"
#include "spawn.h"
#include "winrmctl.h"
#include "wsman.h"

#define MAX_INCLUDE_DEPTH	8
#define MAX_LINE		65536
#define MAX_FILE		(16 * 1024 * 1024)
#define SECTION_PREFIX		"SessionConfiguration "

static const char *const builtin_names[] = {
	"Microsoft.PowerShell", "PowerShell.7", "cmd", NULL
};

/* The [SessionConfiguration] keys, from conf-keys.h. */
enum key_type { KT_U64, KT_BOOL, KT_STR, KT_LIST };
#define SESS_KEY(f, k, t, d, doc) \
	{ k, KT_##t, offsetof(struct wrm_session_conf, f) },
static const struct {
	const char *key;
	enum key_type type;
	size_t off;
} session_keys[] = {
	WRM_SESSION_KEYS(SESS_KEY)
	{ NULL, 0, 0 }
};

/* ---- small helpers ---- */

void *
ctl_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "winrmctl: out of memory\n");
		exit(1);
	}
	return p;
}

char *
ctl_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, "winrmctl: out of memory\n");
		exit(1);
	}
	return p;
}

char *
ctl_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		fprintf(stderr, "winrmctl: out of memory\n");
		exit(1);
	}
	return s;
}

/* As conf.c trims a line. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static char *
dir_of(const char *path)
{
	char *tmp = ctl_xstrdup(path), *d = ctl_xstrdup(dirname(tmp));

	free(tmp);
	return d;
}

static char *
base_of(const char *path)
{
	char *tmp = ctl_xstrdup(path), *b = ctl_xstrdup(basename(tmp));

	free(tmp);
	return b;
}

/*
 * A path in a form two names of the same file share: the real path of its
 * directory, then its own name.  The path itself when the directory does
 * not exist.
 */
static char *
canon(const char *path)
{
	char *dir = dir_of(path), *base = base_of(path), *real, *r;

	real = realpath(dir, NULL);
	r = real != NULL ? ctl_xasprintf("%s/%s", real, base) : ctl_xstrdup(path);
	free(real);
	free(dir);
	free(base);
	return r;
}

/* The whole file, or NULL with errno set. */
static char *
read_text(const char *path)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) != 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if (st.st_size > MAX_FILE)
		e = EFBIG;
	else
		e = 0;
	if (e != 0) {
		close(fd);
		errno = e;
		return NULL;
	}
	buf = ctl_xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

int
ctl_write_file(const char *path, const char *text, int mode, bool replace)
{
	char *dir = dir_of(path), *base = base_of(path), *tmp;
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd, dfd, r = 0, e = 0;

	tmp = ctl_xasprintf("%s/.%s.XXXXXX", dir, base);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		e = errno;
		free(tmp);
		free(dir);
		free(base);
		errno = e;
		return -1;
	}
	while (off < len && (n = write(fd, text + off, len - off)) > 0)
		off += (size_t)n;
	if (off < len || fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0)
		r = -1;
	if (r != 0)
		e = errno != 0 ? errno : EIO;
	if (close(fd) != 0 && r == 0) {
		r = -1;
		e = errno;
	}
	if (r == 0 && (replace ? rename(tmp, path) : link(tmp, path)) != 0) {
		r = -1;
		e = errno;
	}
	if (r != 0 || !replace)
		unlink(tmp);
	if (r == 0 && (dfd = open(dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(tmp);
	free(dir);
	free(base);
	errno = e;
	return r;
}

/* ---- loading the configuration as winrmd does, with substitutions ---- */

struct where {
	char *key;		/* NULL: a section line */
	char *file;
	unsigned line;
};

struct loader {
	struct wrm_conf *conf;
	struct ctl_subst *subst;
	char **subst_canon;
	size_t n_subst;
	const char *track;	/* session configuration whose lines we note */
	struct where *where;
	size_t n_where;
};

static void parse_path(struct loader *ld, const char *path, int depth);

static void
note(struct loader *ld, const char *key, const char *file, unsigned line)
{
	struct where *w;

	w = realloc(ld->where, (ld->n_where + 1) * sizeof(*w));
	if (w == NULL)
		return;
	ld->where = w;
	w[ld->n_where].key = key != NULL ? ctl_xstrdup(key) : NULL;
	w[ld->n_where].file = ctl_xstrdup(file);
	w[ld->n_where].line = line;
	ld->n_where++;
}

static bool
is_tracked_section(const struct loader *ld, const char *section)
{
	size_t pl = strlen(SECTION_PREFIX);

	return ld->track != NULL &&
	    strncasecmp(section, SECTION_PREFIX, pl) == 0 &&
	    strcasecmp(section + pl, ld->track) == 0;
}

/* Does the include pattern full (absolute or relative) match target? */
static bool
pattern_matches(const char *full, const char *target)
{
	char *dpat = dir_of(full), *bpat = base_of(full);
	char *tdir = dir_of(target), *tbase = base_of(target);
	char *treal = realpath(tdir, NULL), *real;
	bool match = false;
	glob_t g;
	size_t i;

	if (treal != NULL && fnmatch(bpat, tbase, FNM_PERIOD) == 0 &&
	    glob(dpat, GLOB_NOSORT, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc && !match; i++) {
			real = realpath(g.gl_pathv[i], NULL);
			match = real != NULL && strcmp(real, treal) == 0;
			free(real);
		}
		globfree(&g);
	}
	free(treal);
	free(dpat);
	free(bpat);
	free(tdir);
	free(tbase);
	return match;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
do_include(struct loader *ld, const char *file, unsigned line,
    const char *pattern, int depth)
{
	char *full, *dir, **paths = NULL;
	size_t n = 0, i, j;
	struct stat st;
	glob_t g;
	int r;

	if (pattern[0] == '/')
		full = ctl_xstrdup(pattern);
	else {
		dir = dir_of(file);
		full = ctl_xasprintf("%s/%s", dir, pattern);
		free(dir);
	}
	r = glob(full, 0, NULL, &g);
	if (r != 0 && r != GLOB_NOMATCH) {
		wrm_conf_add_error(ld->conf, "%s:%u: Include %s: glob failed",
		    file, line, pattern);
		free(full);
		return;
	}
	paths = ctl_xmalloc((g.gl_pathc + ld->n_subst + 1) * sizeof(*paths));
	for (i = 0; r == 0 && i < g.gl_pathc; i++)
		paths[n++] = ctl_xstrdup(g.gl_pathv[i]);
	if (r == 0)
		globfree(&g);
	/* A file about to be created is read where it would be. */
	for (j = 0; j < ld->n_subst; j++) {
		if (ld->subst[j].text == NULL ||
		    lstat(ld->subst[j].path, &st) == 0 ||
		    !pattern_matches(full, ld->subst[j].path))
			continue;
		paths[n++] = ctl_xstrdup(ld->subst[j].path);
	}
	qsort(paths, n, sizeof(*paths), cmp_str);
	for (i = 0; i < n; i++) {
		parse_path(ld, paths[i], depth + 1);
		free(paths[i]);
	}
	free(paths);
	free(full);
}

/* The "command line:0: " that wrm_conf_set() puts first becomes file:line. */
static void
relocate_errors(struct loader *ld, size_t from, const char *file,
    unsigned line)
{
	static const char cl[] = "command line:0: ";
	char *s;
	size_t i;

	for (i = from; i < ld->conf->n_errors; i++) {
		s = ld->conf->errors[i];
		if (strncmp(s, cl, sizeof(cl) - 1) != 0)
			continue;
		ld->conf->errors[i] = ctl_xasprintf("%s:%u: %s", file, line,
		    s + sizeof(cl) - 1);
		free(s);
	}
}

/* The file format of conf.c, line by line. */
static void
parse_text(struct loader *ld, const char *file, const char *text, int depth)
{
	char *copy = ctl_xstrdup(text), *line, *next, *p, *eq, *e, *a;
	char *section = ctl_xstrdup("");
	unsigned lineno = 0;
	size_t before;

	for (line = copy; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (strlen(line) + (next != NULL) > MAX_LINE) {
			wrm_conf_add_error(ld->conf, "%s:%u: line too long",
			    file, lineno);
			continue;
		}
		p = trim(line);
		if (lineno == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
			p = trim(p + 3);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			e = strchr(p, ']');
			if (e == NULL || *trim(e + 1) != '\0') {
				wrm_conf_add_error(ld->conf,
				    "%s:%u: syntax error", file, lineno);
				continue;
			}
			*e = '\0';
			free(section);
			section = ctl_xstrdup(trim(p + 1));
			if (is_tracked_section(ld, section))
				note(ld, NULL, file, lineno);
			continue;
		}
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			wrm_conf_add_error(ld->conf, "%s:%u: syntax error",
			    file, lineno);
			continue;
		}
		*eq = '\0';
		p = trim(p);
		if (strcasecmp(p, "Include") == 0) {
			do_include(ld, file, lineno, trim(eq + 1), depth);
			continue;
		}
		if (is_tracked_section(ld, section))
			note(ld, p, file, lineno);
		a = ctl_xasprintf("%s.%s=%s", section, p, trim(eq + 1));
		before = ld->conf->n_errors;
		if (wrm_conf_set(ld->conf, a) != 0 &&
		    ld->conf->n_errors == before)
			wrm_conf_add_error(ld->conf, "%s:%u: syntax error",
			    file, lineno);
		relocate_errors(ld, before, file, lineno);
		free(a);
	}
	free(section);
	free(copy);
}

static void
parse_path(struct loader *ld, const char *path, int depth)
{
	char *c, *text;
	size_t i;

	if (depth > MAX_INCLUDE_DEPTH) {
		wrm_conf_add_error(ld->conf, "%s: includes nested too deeply",
		    path);
		return;
	}
	c = canon(path);
	for (i = 0; i < ld->n_subst; i++)
		if (strcmp(c, ld->subst_canon[i]) == 0)
			break;
	free(c);
	if (i < ld->n_subst) {
		ld->subst[i].seen = true;
		if (ld->subst[i].text != NULL)
			parse_text(ld, path, ld->subst[i].text, depth);
		return;
	}
	if ((text = read_text(path)) == NULL) {
		wrm_conf_add_error(ld->conf, "%s: cannot open: %s", path,
		    strerror(errno));
		return;
	}
	parse_text(ld, path, text, depth);
	free(text);
}

static int
load(const char *path, struct ctl_subst *subst, size_t n_subst,
    const char *track, struct loader *ld)
{
	char *put;
	size_t i;
	int r;

	memset(ld, 0, sizeof(*ld));
	if ((r = wrm_conf_defaults(&ld->conf)) != 0)
		return r;
	ld->conf->path = ctl_xstrdup(path);
	ld->subst = subst;
	ld->n_subst = n_subst;
	ld->track = track;
	ld->subst_canon = ctl_xmalloc((n_subst + 1) * sizeof(char *));
	for (i = 0; i < n_subst; i++) {
		subst[i].seen = false;
		ld->subst_canon[i] = canon(subst[i].path);
	}
	parse_path(ld, path, 0);
	/* As winrmd: the settings changed with WS-Management Put follow. */
	if ((put = wsman_config_put_file(
	    ld->conf->service.state_directory)) != NULL) {
		parse_path(ld, put, 1);
		free(put);
	}
	for (i = 0; i < ctl_n_overrides; i++)
		if (wrm_conf_set(ld->conf, ctl_overrides[i]) != 0)
			wrm_conf_add_error(ld->conf, "-o %s: bad assignment",
			    ctl_overrides[i]);
	wrm_conf_check(ld->conf);
	return 0;
}

static void
loader_free(struct loader *ld)
{
	size_t i;

	for (i = 0; i < ld->n_subst; i++)
		free(ld->subst_canon[i]);
	free(ld->subst_canon);
	for (i = 0; i < ld->n_where; i++) {
		free(ld->where[i].key);
		free(ld->where[i].file);
	}
	free(ld->where);
	/* conf belongs to the caller */
}

int
ctl_conf_load(const char *path, struct ctl_subst *subst, size_t n_subst,
    struct wrm_conf **conf_r)
{
	struct loader ld;
	int r;

	*conf_r = NULL;
	if ((r = load(path, subst, n_subst, NULL, &ld)) != 0)
		return r;
	*conf_r = ld.conf;
	loader_free(&ld);
	return 0;
}

/* ---- where winrmd finds plugins and its host (as winrmd.c does) ---- */

static char *
exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return ctl_xstrdup(dirname(buf));
}

/* NAME next to this executable, when it runs from a build tree. */
static char *
beside_exe(const char *name)
{
	char *dir = exe_dir(), *p = NULL;
	struct stat st;

	if (dir != NULL && strcmp(dir, WRM_DEFAULT_SBINDIR) != 0) {
		p = ctl_xasprintf("%s/%s", dir, name);
		if (stat(p, &st) != 0) {
			free(p);
			p = NULL;
		}
	}
	free(dir);
	return p;
}

char *
ctl_plugin_dir(const struct wrm_conf *conf)
{
	char *p;

	if (conf->service.plugin_directory[0] != '\0')
		return ctl_xstrdup(conf->service.plugin_directory);
	if ((p = beside_exe("plugins")) != NULL)
		return p;
	return ctl_xstrdup(WRM_DEFAULT_PLUGINDIR);
}

char *
ctl_host_program(const struct wrm_conf *conf)
{
	char *p;

	if (conf->service.host_program[0] != '\0')
		return ctl_xstrdup(conf->service.host_program);
	if ((p = beside_exe("winrmd-host")) != NULL)
		return p;
	return ctl_xstrdup(WRM_DEFAULT_HOSTPROG);
}

/*
 * What "winrmd -t" checks of one session configuration's plugin: that it
 * is found, that winrmd-host loads it, that it accepts every option given
 * and that every option it requires is given.
 */
static void
check_plugin(struct wrm_conf *conf, const struct wrm_session_conf *sc)
{
	char *dir = ctl_plugin_dir(conf), *host = NULL, *path, *out = NULL;
	char pat[300], *line, *save = NULL, *copy;
	size_t j;

	path = wrm_plugin_path(dir, sc->plugin);
	if (path == NULL) {
		if (!(sc->builtin && !sc->enabled))
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "plugin %s not found in %s", sc->name, sc->plugin,
			    dir);
		goto out;
	}
	host = ctl_host_program(conf);
	if (access(host, X_OK) != 0) {
		wrm_conf_add_warning(conf, "SessionConfiguration %s: %s: %s; "
		    "the options of plugin %s were not checked", sc->name,
		    host, strerror(errno), sc->plugin);
		goto out;
	}
	if (wrm_spawn_check_plugin(host, path, &out) != 0) {
		wrm_conf_add_error(conf, "SessionConfiguration %s: %s",
		    sc->name, out != NULL && strncmp(out, "refused\t", 8) == 0 ?
		    trim(out + 8) : "plugin check failed");
		goto out;
	}
	for (j = 0; j < sc->n_options; j++) {
		snprintf(pat, sizeof(pat), "option\t%s\t", sc->options[j].key);
		if (out == NULL || strcasestr(out, pat) == NULL)
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "plugin %s has no option %s", sc->name, sc->plugin,
			    sc->options[j].key);
	}
	/* "option NAME TYPE REQUIRED" lines */
	copy = ctl_xstrdup(out != NULL ? out : "");
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *s2 = NULL, *w;
		int n = 0;

		for (w = strtok_r(line, "\t", &s2); w != NULL && n < 4;
		    w = strtok_r(NULL, "\t", &s2))
			f[n++] = w;
		if (n == 4 && strcmp(f[0], "option") == 0 &&
		    strcmp(f[3], "1") == 0 &&
		    wrm_conf_session_option(sc, f[1]) == NULL)
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "plugin %s needs option %s", sc->name, sc->plugin,
			    f[1]);
	}
	free(copy);
out:
	free(out);
	free(host);
	free(path);
	free(dir);
}

/* ---- the daemon ---- */

/* The running daemon's pid from its control socket, or 0. */
static long
daemon_pid(const struct wrm_conf *conf)
{
	char *buf = NULL, *p;
	size_t len = 0;
	long pid = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return 0;
	if (ctl_admin_request(conf->service.state_directory, "status",
	    f) != 0) {
		fclose(f);
		free(buf);
		return 0;
	}
	fclose(f);
	if (buf != NULL && (p = strstr(buf, "pid\t")) != NULL &&
	    (p == buf || p[-1] == '\n'))
		pid = strtol(p + 4, NULL, 10);
	free(buf);
	return pid > 0 ? pid : 0;
}

/* After a change: reload the daemon, or say how to. */
static int
apply_hint(const struct wrm_conf *conf, bool reload)
{
	long pid = daemon_pid(conf);

	if (reload) {
		if (pid == 0) {
			printf("winrmd is not running (nothing answers on "
			    "%s/control, or not to this user); it reads the "
			    "change when it starts\n",
			    conf->service.state_directory);
			return 0;
		}
		if (kill((pid_t)pid, SIGHUP) != 0) {
			fprintf(stderr, "winrmctl: cannot signal winrmd (pid "
			    "%ld): %s\n", pid, strerror(errno));
			return 1;
		}
		printf("sent SIGHUP to winrmd (pid %ld): it reloads its "
		    "configuration\n", pid);
		return 0;
	}
	if (pid != 0)
		printf("To apply it, reload winrmd (pid %ld): systemctl reload "
		    "winrmd, or kill -HUP %ld\n", pid, pid);
	else
		printf("To apply it, reload winrmd: systemctl reload winrmd, "
		    "or kill -HUP with its pid; a winrmd started later reads "
		    "it anyway\n");
	return 0;
}

/* ---- session configuration files ---- */

static bool
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 100 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') &&
		    s[i] != '.' && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static bool
valid_key(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 100 || strcasecmp(s, "Include") == 0 ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' &&
		    s[i] != '-')
			return false;
	return true;
}

static bool
is_builtin(const char *name)
{
	size_t i;

	for (i = 0; builtin_names[i] != NULL; i++)
		if (strcasecmp(builtin_names[i], name) == 0)
			return true;
	return false;
}

/* The sessions.d directory next to the configuration file. */
static char *
sessions_dir(void)
{
	char *dir = dir_of(ctl_config_path), *s;

	s = ctl_xasprintf("%s/sessions.d", dir);
	free(dir);
	return s;
}

/* sessions.d/NAME.conf, matched without regard to case if it exists. */
static char *
session_file(const char *sdir, const char *name)
{
	char *want = ctl_xasprintf("%s.conf", name), *found = NULL;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(sdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strcasecmp(de->d_name, want) == 0) {
				found = ctl_xasprintf("%s/%s", sdir, de->d_name);
				break;
			}
		closedir(d);
	}
	if (found == NULL)
		found = ctl_xasprintf("%s/%s", sdir, want);
	free(want);
	return found;
}

/* A file's lines, for changes that keep the rest of it as it is. */
struct lines {
	char **v;
	size_t n;
};

enum line_kind { L_OTHER, L_SECTION, L_KEY, L_INCLUDE, L_BLANK };

static void
lines_split(struct lines *L, const char *text)
{
	const char *p = text, *e;

	memset(L, 0, sizeof(*L));
	while (p != NULL && *p != '\0') {
		e = strchr(p, '\n');
		L->v = realloc(L->v, (L->n + 1) * sizeof(*L->v));
		if (L->v == NULL)
			exit(1);
		L->v[L->n++] = e != NULL ? strndup(p, (size_t)(e - p)) :
		    ctl_xstrdup(p);
		p = e != NULL ? e + 1 : NULL;
	}
}

static void
lines_insert(struct lines *L, size_t at, char *line)
{
	L->v = realloc(L->v, (L->n + 1) * sizeof(*L->v));
	if (L->v == NULL)
		exit(1);
	memmove(L->v + at + 1, L->v + at, (L->n - at) * sizeof(*L->v));
	L->v[at] = line;
	L->n++;
}

static char *
lines_join(const struct lines *L)
{
	size_t len = 1, i;
	char *s, *p;

	for (i = 0; i < L->n; i++)
		len += strlen(L->v[i]) + 1;
	p = s = ctl_xmalloc(len);
	for (i = 0; i < L->n; i++)
		p = stpcpy(stpcpy(p, L->v[i]), "\n");
	*p = '\0';
	return s;
}

static void
lines_free(struct lines *L)
{
	size_t i;

	for (i = 0; i < L->n; i++)
		free(L->v[i]);
	free(L->v);
}

/*
 * What a line is; for a section line *name_r is the section, for a key
 * line the key (malloc'd).
 */
static enum line_kind
classify(const char *line, char **name_r)
{
	char *copy = ctl_xstrdup(line), *p = trim(copy), *e;
	enum line_kind k = L_OTHER;

	*name_r = NULL;
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p = trim(p + 3);
	if (*p == '\0' || *p == '#' || *p == ';')
		k = L_BLANK;
	else if (*p == '[') {
		if ((e = strchr(p, ']')) != NULL && *trim(e + 1) == '\0') {
			*e = '\0';
			*name_r = ctl_xstrdup(trim(p + 1));
			k = L_SECTION;
		}
	} else if ((e = strchr(p, '=')) != NULL && e != p) {
		*e = '\0';
		p = trim(p);
		if (strcasecmp(p, "Include") == 0)
			k = L_INCLUDE;
		else {
			*name_r = ctl_xstrdup(p);
			k = L_KEY;
		}
	}
	free(copy);
	return k;
}

static bool
is_our_section(const char *section, const char *name)
{
	size_t pl = strlen(SECTION_PREFIX);

	return strncasecmp(section, SECTION_PREFIX, pl) == 0 &&
	    strcasecmp(section + pl, name) == 0;
}

/*
 * Set key = value in the file's [SessionConfiguration name] section: the
 * last line that sets the key there is rewritten, or the line is added at
 * the end of the last such section, or a section is added at the end.
 */
static void
lines_set(struct lines *L, const char *name, const char *key,
    const char *value)
{
	size_t i, last_key = SIZE_MAX, insert_at = SIZE_MAX;
	bool ours = false;
	char *n;

	for (i = 0; i < L->n; i++) {
		switch (classify(L->v[i], &n)) {
		case L_SECTION:
			ours = is_our_section(n, name);
			if (ours)
				insert_at = i + 1;
			break;
		case L_KEY:
		case L_INCLUDE:
			if (ours) {
				insert_at = i + 1;
				if (n != NULL && strcasecmp(n, key) == 0)
					last_key = i;
			}
			break;
		default:
			break;
		}
		free(n);
	}
	if (last_key != SIZE_MAX) {
		/* Keep the key as the file spells it. */
		char *copy = ctl_xstrdup(L->v[last_key]), *p = trim(copy);

		*strchr(p, '=') = '\0';
		n = ctl_xasprintf("%s = %s", trim(p), value);
		free(copy);
		free(L->v[last_key]);
		L->v[last_key] = n;
		return;
	}
	if (insert_at == SIZE_MAX) {
		if (L->n > 0 && *trim(L->v[L->n - 1]) != '\0')
			lines_insert(L, L->n, ctl_xstrdup(""));
		lines_insert(L, L->n, ctl_xasprintf("[SessionConfiguration %s]",
		    name));
		insert_at = L->n;
	}
	lines_insert(L, insert_at, ctl_xasprintf("%s = %s", key, value));
}

/* Whether the file holds nothing but name's sections and comments. */
static bool
lines_only_ours(const struct lines *L, const char *name, char **why_r)
{
	bool ours = false;
	size_t i;
	char *n;

	*why_r = NULL;
	for (i = 0; i < L->n && *why_r == NULL; i++) {
		switch (classify(L->v[i], &n)) {
		case L_SECTION:
			ours = is_our_section(n, name);
			if (!ours)
				*why_r = ctl_xasprintf("line %zu: [%s]", i + 1, n);
			break;
		case L_KEY:
			if (!ours)
				*why_r = ctl_xasprintf("line %zu: a key outside "
				    "its section", i + 1);
			break;
		case L_INCLUDE:
			*why_r = ctl_xasprintf("line %zu: an Include", i + 1);
			break;
		case L_OTHER:
			*why_r = ctl_xasprintf("line %zu: not a configuration "
			    "line", i + 1);
			break;
		default:
			break;
		}
		free(n);
	}
	return *why_r == NULL;
}

/* ---- the commands ---- */

struct kv {
	char *key;
	char *value;
};

struct args {
	const char *name;
	const char *plugin;
	const char *uri;
	bool reload;
	struct kv *kv;
	size_t n_kv;
};

static int
parse_args(int argc, char **argv, bool allow_plugin, bool allow_kv,
    struct args *a)
{
	char *eq;
	int i;

	memset(a, 0, sizeof(*a));
	if (argc < 1)
		ctl_usage();
	a->name = argv[0];
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;

		if (strcmp(arg, "--reload") == 0) {
			a->reload = true;
			continue;
		}
		if (allow_plugin && (strcmp(arg, "--plugin") == 0 ||
		    strcmp(arg, "--resource-uri") == 0)) {
			if (i + 1 >= argc)
				ctl_usage();
			val = argv[++i];
		} else if (allow_plugin && (strncmp(arg, "--plugin=", 9) == 0 ||
		    strncmp(arg, "--resource-uri=", 15) == 0))
			val = strchr(arg, '=') + 1;
		if (val != NULL) {
			if (strncmp(arg, "--plugin", 8) == 0)
				a->plugin = val;
			else
				a->uri = val;
			continue;
		}
		if (arg[0] == '-' || !allow_kv ||
		    (eq = strchr(arg, '=')) == NULL)
			ctl_usage();
		a->kv = realloc(a->kv, (a->n_kv + 1) * sizeof(*a->kv));
		if (a->kv == NULL)
			exit(1);
		a->kv[a->n_kv].key = strndup(arg, (size_t)(eq - arg));
		a->kv[a->n_kv].value = wrm_strdup_trim(eq + 1);
		a->n_kv++;
	}
	if (!valid_name(a->name)) {
		fprintf(stderr, "winrmctl: bad configuration name \"%s\": "
		    "letters, digits, '.', '-' and '_' only, not first '.' or "
		    "'-', at most 100\n", a->name);
		return 1;
	}
	for (i = 0; (size_t)i < a->n_kv; i++) {
		if (!valid_key(a->kv[i].key)) {
			fprintf(stderr, "winrmctl: bad key \"%s\"\n",
			    a->kv[i].key);
			return 1;
		}
		if (strpbrk(a->kv[i].value, "\r\n") != NULL) {
			fprintf(stderr, "winrmctl: %s: a value is one line\n",
			    a->kv[i].key);
			return 1;
		}
	}
	if ((a->plugin != NULL && (!valid_key(a->plugin) ||
	    strchr(a->plugin, '/') != NULL)) ||
	    (a->uri != NULL && (a->uri[0] == '\0' ||
	    strpbrk(a->uri, " \t\r\n") != NULL))) {
		fprintf(stderr, "winrmctl: bad %s\n", a->uri != NULL &&
		    (a->uri[0] == '\0' || strpbrk(a->uri, " \t\r\n") != NULL) ?
		    "resource URI" : "plugin name");
		return 1;
	}
	return 0;
}

static void
args_free(struct args *a)
{
	size_t i;

	for (i = 0; i < a->n_kv; i++) {
		free(a->kv[i].key);
		free(a->kv[i].value);
	}
	free(a->kv);
}

static const char *
effective_uri(const struct wrm_session_conf *s, char *buf, size_t len)
{
	if (s->resource_uri[0] != '\0')
		return s->resource_uri;
	snprintf(buf, len, "%s%s", WRM_URI_PS_PREFIX, s->name);
	return buf;
}

/* The configuration, or exit with its errors. */
static struct wrm_conf *
load_current(void)
{
	struct wrm_conf *conf;

	if (ctl_conf_load(ctl_config_path, NULL, 0, &conf) != 0) {
		fprintf(stderr, "winrmctl: cannot read %s\n", ctl_config_path);
		exit(1);
	}
	return conf;
}

static void
print_errors(const struct wrm_conf *conf)
{
	size_t i;

	for (i = 0; i < conf->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", conf->warnings[i]);
	for (i = 0; i < conf->n_errors; i++)
		fprintf(stderr, "error: %s\n", conf->errors[i]);
}

enum op { OP_REGISTER, OP_UNREGISTER, OP_SET };

/*
 * The checks of a changed configuration beyond wrm_conf_check(): the
 * plugin of the configuration, a resource URI used twice, and values that
 * a file read later sets again.
 */
static void
check_change(struct loader *ld, enum op op, const char *name,
    const char *target, const struct kv *kv, size_t n_kv)
{
	struct wrm_conf *conf = ld->conf;
	const struct wrm_session_conf *sc, *o;
	char b1[512], b2[512], *tc = canon(target), *wc;
	size_t i, j;

	sc = wrm_conf_session_by_name(conf, name);
	if (op == OP_UNREGISTER) {
		if (sc != NULL) {
			for (i = 0; i < ld->n_where; i++)
				if (ld->where[i].key == NULL)
					break;
			wrm_conf_add_error(conf, "SessionConfiguration %s is "
			    "still defined%s%s:%u", name, i < ld->n_where ?
			    " at " : "", i < ld->n_where ? ld->where[i].file :
			    "", i < ld->n_where ? ld->where[i].line : 0);
		}
		free(tc);
		return;
	}
	if (sc == NULL) {
		wrm_conf_add_error(conf, "%s is not read by %s: it needs "
		    "\"Include = sessions.d/*.conf\"", target, ctl_config_path);
		free(tc);
		return;
	}
	check_plugin(conf, sc);
	effective_uri(sc, b1, sizeof(b1));
	for (i = 0; i < conf->n_sessions; i++) {
		o = &conf->sessions[i];
		if (o == sc || (o->resource_uri[0] != '\0' &&
		    sc->resource_uri[0] != '\0'))
			continue;	/* wrm_conf_check() tells */
		if (strcasecmp(effective_uri(o, b2, sizeof(b2)), b1) == 0)
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "ResourceURI %s already used by %s", sc->name, b1,
			    o->name);
	}
	/* Each key set must be the last one read. */
	for (j = 0; j < n_kv; j++) {
		const struct where *last = NULL;

		for (i = 0; i < ld->n_where; i++)
			if (ld->where[i].key != NULL &&
			    strcasecmp(ld->where[i].key, kv[j].key) == 0)
				last = &ld->where[i];
		if (last == NULL)
			continue;
		wc = canon(last->file);
		if (strcmp(wc, tc) != 0)
			wrm_conf_add_error(conf, "SessionConfiguration %s: %s "
			    "is set again at %s:%u, which is read after %s; "
			    "change it there", name, kv[j].key, last->file,
			    last->line, target);
		free(wc);
	}
	free(tc);
}

static int
change(enum op op, struct args *a)
{
	struct wrm_conf *cur;
	const struct wrm_session_conf *sc;
	struct ctl_subst sub;
	struct loader ld;
	struct lines L;
	struct stat st;
	struct kv *kv = NULL;
	char *sdir = sessions_dir(), *target = NULL, *old = NULL, *text = NULL;
	char *why = NULL, *name = NULL;
	size_t n_kv = 0, i;
	bool exists;
	int lockfd = -1, rc = 1;

	if (mkdir(sdir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "winrmctl: cannot create %s: %s\n", sdir,
		    strerror(errno));
		free(sdir);
		return 1;
	}
	/* One change at a time. */
	if ((lockfd = open(sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    flock(lockfd, LOCK_EX) != 0) {
		fprintf(stderr, "winrmctl: %s: %s\n", sdir, strerror(errno));
		goto out;
	}
	cur = load_current();
	sc = wrm_conf_session_by_name(cur, a->name);
	name = ctl_xstrdup(sc != NULL ? sc->name : a->name);
	switch (op) {
	case OP_REGISTER:
		if (sc != NULL) {
			fprintf(stderr, "winrmctl: session configuration %s %s "
			    "(winrmctl config set changes it)\n", sc->name,
			    sc->builtin ? "is built in" : "exists");
			wrm_conf_free(cur);
			goto out;
		}
		break;
	case OP_UNREGISTER:
		if (sc == NULL || is_builtin(name)) {
			fprintf(stderr, sc == NULL ? "winrmctl: no session "
			    "configuration %s\n" : "winrmctl: %s is built in: "
			    "it cannot be unregistered, but it can be disabled "
			    "(winrmctl config disable)\n", name);
			wrm_conf_free(cur);
			goto out;
		}
		break;
	case OP_SET:
		if (sc == NULL) {
			fprintf(stderr, "winrmctl: no session configuration %s "
			    "(winrmctl config register adds one)\n", a->name);
			wrm_conf_free(cur);
			goto out;
		}
		break;
	}
	/* The keys to write, Plugin and ResourceURI first. */
	kv = ctl_xmalloc((a->n_kv + 2) * sizeof(*kv));
	if (a->plugin != NULL) {
		kv[n_kv].key = (char *)"Plugin";
		kv[n_kv++].value = (char *)a->plugin;
	}
	if (a->uri != NULL) {
		kv[n_kv].key = (char *)"ResourceURI";
		kv[n_kv++].value = (char *)a->uri;
	}
	for (i = 0; i < a->n_kv; i++)
		kv[n_kv++] = a->kv[i];
	target = session_file(sdir, name);
	old = read_text(target);
	exists = old != NULL || lstat(target, &st) == 0;
	if (old == NULL && exists) {
		fprintf(stderr, "winrmctl: cannot read %s: %s\n", target,
		    strerror(errno));
		wrm_conf_free(cur);
		goto out;
	}
	lines_split(&L, old != NULL ? old : "");
	if (op == OP_UNREGISTER) {
		if (!exists) {
			fprintf(stderr, "winrmctl: %s is not defined in %s; "
			    "remove it where it is defined\n", name, target);
			lines_free(&L);
			wrm_conf_free(cur);
			goto out;
		}
		if (!lines_only_ours(&L, name, &why)) {
			fprintf(stderr, "winrmctl: %s holds more than session "
			    "configuration %s (%s); edit it by hand\n", target,
			    name, why);
			free(why);
			lines_free(&L);
			wrm_conf_free(cur);
			goto out;
		}
	} else {
		if (!exists) {
			lines_insert(&L, 0, ctl_xasprintf("# Session configuration "
			    "%s, written by winrmctl; see winrmd.conf(5).",
			    name));
			lines_insert(&L, 1, ctl_xasprintf("[SessionConfiguration "
			    "%s]", name));
		}
		for (i = 0; i < n_kv; i++)
			lines_set(&L, name, kv[i].key, kv[i].value);
		text = lines_join(&L);
	}
	lines_free(&L);
	/* The whole configuration, with the change. */
	sub.path = target;
	sub.text = text;
	if (load(ctl_config_path, &sub, 1, name, &ld) != 0) {
		fprintf(stderr, "winrmctl: cannot read %s\n", ctl_config_path);
		wrm_conf_free(cur);
		goto out;
	}
	if (op != OP_UNREGISTER && !sub.seen)
		wrm_conf_add_error(ld.conf, "%s is not read by %s: it needs "
		    "\"Include = sessions.d/*.conf\"", target,
		    ctl_config_path);
	else
		check_change(&ld, op, name, target, kv, n_kv);
	if (ld.conf->n_errors > 0) {
		print_errors(ld.conf);
		fprintf(stderr, "winrmctl: refused, %s is left as it was: the "
		    "configuration would not check with the change\n", target);
		wrm_conf_free(ld.conf);
		loader_free(&ld);
		wrm_conf_free(cur);
		goto out;
	}
	for (i = 0; i < ld.conf->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", ld.conf->warnings[i]);
	if (op == OP_UNREGISTER) {
		if (unlink(target) != 0) {
			fprintf(stderr, "winrmctl: cannot remove %s: %s\n",
			    target, strerror(errno));
			goto done;
		}
		printf("removed %s\n", target);
	} else {
		if (ctl_write_file(target, text, 0644, exists) != 0) {
			fprintf(stderr, "winrmctl: cannot write %s: %s\n",
			    target, strerror(errno));
			goto done;
		}
		printf("%s %s\n", exists ? "updated" : "wrote", target);
	}
	rc = apply_hint(ld.conf, a->reload);
done:
	wrm_conf_free(ld.conf);
	loader_free(&ld);
	wrm_conf_free(cur);
out:
	if (lockfd >= 0)
		close(lockfd);
	free(kv);
	free(name);
	free(old);
	free(text);
	free(target);
	free(sdir);
	return rc;
}

static int
cmd_list(void)
{
	struct wrm_conf *conf = load_current();
	const struct wrm_session_conf *s;
	int wn = 4, wp = 6;
	char buf[512];
	size_t i;

	if (conf->n_errors > 0)
		fprintf(stderr, "warning: %s has errors (winrmd -t lists "
		    "them): %s\n", ctl_config_path, conf->errors[0]);
	for (i = 0; i < conf->n_sessions; i++) {
		s = &conf->sessions[i];
		if ((int)strlen(s->name) > wn)
			wn = (int)strlen(s->name);
		if ((int)strlen(s->plugin) > wp)
			wp = (int)strlen(s->plugin);
	}
	printf("%-*s  %-*s  %-7s  %s\n", wn, "NAME", wp, "PLUGIN", "ENABLED",
	    "RESOURCEURI");
	for (i = 0; i < conf->n_sessions; i++) {
		s = &conf->sessions[i];
		printf("%-*s  %-*s  %-7s  %s\n", wn, s->name, wp,
		    s->plugin[0] != '\0' ? s->plugin : "-",
		    s->enabled ? "true" : "false",
		    effective_uri(s, buf, sizeof(buf)));
	}
	wrm_conf_free(conf);
	return 0;
}

static int
cmd_show(const char *name)
{
	const struct wrm_session_conf *s;
	struct loader ld;
	char buf[512];
	const void *f;
	size_t i;

	if (load(ctl_config_path, NULL, 0, name, &ld) != 0) {
		fprintf(stderr, "winrmctl: cannot read %s\n", ctl_config_path);
		return 1;
	}
	if ((s = wrm_conf_session_by_name(ld.conf, name)) == NULL) {
		fprintf(stderr, "winrmctl: no session configuration %s\n",
		    name);
		wrm_conf_free(ld.conf);
		loader_free(&ld);
		return 1;
	}
	if (ld.conf->n_errors > 0)
		fprintf(stderr, "warning: %s has errors (winrmd -t lists "
		    "them): %s\n", ctl_config_path, ld.conf->errors[0]);
	if (s->builtin)
		printf("# Built in.\n");
	for (i = 0; i < ld.n_where; i++)
		if (ld.where[i].key == NULL)
			printf("# Section at %s:%u\n", ld.where[i].file,
			    ld.where[i].line);
	if (s->resource_uri[0] == '\0')
		printf("# Resource URI: %s\n", effective_uri(s, buf,
		    sizeof(buf)));
	printf("[SessionConfiguration %s]\n", s->name);
	for (i = 0; session_keys[i].key != NULL; i++) {
		f = (const char *)s + session_keys[i].off;
		switch (session_keys[i].type) {
		case KT_U64:
			printf("%s = %llu\n", session_keys[i].key,
			    (unsigned long long)*(const uint64_t *)f);
			break;
		case KT_BOOL:
			printf("%s = %s\n", session_keys[i].key,
			    *(const bool *)f ? "true" : "false");
			break;
		default:
			printf("%s = %s\n", session_keys[i].key,
			    *(char *const *)f != NULL ? *(char *const *)f : "");
		}
	}
	for (i = 0; i < s->n_options; i++)
		printf("%s = %s\n", s->options[i].key, s->options[i].value);
	wrm_conf_free(ld.conf);
	loader_free(&ld);
	return 0;
}

int
ctl_cmd_config(int argc, char **argv)
{
	struct args a;
	const char *verb;
	int rc;

	if (argc < 1)
		ctl_usage();
	verb = argv[0];
	if (strcmp(verb, "list") == 0) {
		if (argc != 1)
			ctl_usage();
		return cmd_list();
	}
	if (strcmp(verb, "show") == 0) {
		if (argc != 2)
			ctl_usage();
		return cmd_show(argv[1]);
	}
	if (strcmp(verb, "register") == 0) {
		if (parse_args(argc - 1, argv + 1, true, true, &a) != 0)
			return 1;
		if (a.plugin == NULL) {
			fprintf(stderr, "winrmctl: config register needs "
			    "--plugin\n");
			args_free(&a);
			return 2;
		}
		rc = change(OP_REGISTER, &a);
	} else if (strcmp(verb, "unregister") == 0) {
		if (parse_args(argc - 1, argv + 1, false, false, &a) != 0)
			return 1;
		rc = change(OP_UNREGISTER, &a);
	} else if (strcmp(verb, "enable") == 0 ||
	    strcmp(verb, "disable") == 0) {
		if (parse_args(argc - 1, argv + 1, false, false, &a) != 0)
			return 1;
		a.kv = ctl_xmalloc(sizeof(*a.kv));
		a.kv[0].key = ctl_xstrdup("Enabled");
		a.kv[0].value = ctl_xstrdup(verb[0] == 'e' ? "true" : "false");
		a.n_kv = 1;
		rc = change(OP_SET, &a);
	} else if (strcmp(verb, "set") == 0) {
		if (parse_args(argc - 1, argv + 1, false, true, &a) != 0)
			return 1;
		if (a.n_kv == 0)
			ctl_usage();
		rc = change(OP_SET, &a);
	} else
		ctl_usage();
	args_free(&a);
	return rc;
}
