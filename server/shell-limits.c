/*
 * MaxMemoryPerShellMB and MaxProcessesPerShell for the whole process
 * tree of a shell, as Windows' job objects do: each host process goes
 * into a control group of its own, with the memory and pids controllers
 * set to the limits; its commands inherit it.
 *
 * cgroup v2: under the daemon's own cgroup (systemd: Delegate=yes), in
 * winrmd-shells/host-PID; the daemon first moves itself to a leaf,
 * winrmd-daemon, when its cgroup would otherwise hold processes and
 * children at once.  cgroup v1: in the memory and pids hierarchies, under
 * the daemon's cgroup there.  Without either, the memory limit becomes
 * RLIMIT_AS of every process of the shell (a per-process bound) and the
 * process limit cannot be applied; winrmd -T says which is in use.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "shell-limits.h"
#include "log.h"

#define CGROUP_ROOT	"/sys/fs/cgroup"
#define CGROUP2_MAGIC	0x63677270
#define UNLIMITED	2147483647u
#define SYSTEMD_RUN	"/usr/bin/systemd-run"

enum mech { M_NONE, M_V2, M_V1, M_RLIMIT, M_SCOPE };

static enum mech mech = M_NONE;
static char *v2_base;			/* .../winrmd-shells */
static char *v1_mem_base, *v1_pids_base;

static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* The daemon's cgroup path in a hierarchy ("" for v2's "0::"). */
static char *
own_cgroup(const char *controller)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024], *r = NULL, *p, *q;

	if (f == NULL)
		return NULL;
	while (r == NULL && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((p = strchr(line, ':')) == NULL ||
		    (q = strchr(p + 1, ':')) == NULL)
			continue;
		*q = '\0';
		if ((controller == NULL && strcmp(p + 1, "") == 0 &&
		    strncmp(line, "0", 1) == 0) ||
		    (controller != NULL && strstr(p + 1, controller) != NULL))
			r = strdup(q + 1);
	}
	fclose(f);
	return r;
}

static bool
setup_v2(void)
{
	char *own = own_cgroup(NULL), *dir = NULL, *leaf = NULL, *ctl = NULL;
	char pid[32];
	bool ok = false;

	if (own == NULL || asprintf(&dir, CGROUP_ROOT "%s", strcmp(own, "/") ==
	    0 ? "" : own) < 0 || asprintf(&ctl, "%s/cgroup.subtree_control",
	    dir) < 0)
		goto out;
	if (write_file(ctl, "+memory +pids") != 0) {
		/* Processes here: move the daemon to a leaf first. */
		if (asprintf(&leaf, "%s/winrmd-daemon", dir) < 0)
			goto out;
		mkdir(leaf, 0755);
		free(ctl);
		ctl = NULL;
		if (asprintf(&ctl, "%s/cgroup.procs", leaf) < 0)
			goto out;
		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		if (write_file(ctl, pid) != 0)
			goto out;
		free(ctl);
		if (asprintf(&ctl, "%s/cgroup.subtree_control", dir) < 0 ||
		    write_file(ctl, "+memory +pids") != 0)
			goto out;
	}
	free(ctl);
	ctl = NULL;
	if (asprintf(&v2_base, "%s/winrmd-shells", dir) < 0)
		goto out;
	if (mkdir(v2_base, 0755) != 0 && errno != EEXIST)
		goto out;
	if (asprintf(&ctl, "%s/cgroup.subtree_control", v2_base) < 0 ||
	    write_file(ctl, "+memory +pids") != 0)
		goto out;
	ok = true;
out:
	if (!ok) {
		free(v2_base);
		v2_base = NULL;
	}
	free(own);
	free(dir);
	free(leaf);
	free(ctl);
	return ok;
}

static char *
v1_base(const char *controller)
{
	char *own = own_cgroup(controller), *b = NULL;

	if (own != NULL && asprintf(&b, CGROUP_ROOT "/%s%s/winrmd-shells",
	    controller, strcmp(own, "/") == 0 ? "" : own) >= 0 &&
	    mkdir(b, 0755) != 0 && errno != EEXIST) {
		free(b);
		b = NULL;
	}
	free(own);
	return b;
}

/* Remove the empty groups of hosts an earlier run left behind. */
static void
sweep_stale(const char *base)
{
	DIR *d;
	struct dirent *e;
	char path[600];

	if (base == NULL || (d = opendir(base)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "host-", 5) == 0) {
			snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
			rmdir(path);	/* fails while it has processes */
		}
	closedir(d);
}

void
wrm_limits_init(void)
{
	struct statfs sf;

	if (geteuid() != 0) {
		mech = M_RLIMIT;
		return;
	}
	/*
	 * Under systemd, the service's own cgroup is systemd's to manage: a
	 * tree of ours inside it would keep the next start of the service
	 * out of it while hosts of disconnected shells remain.  Each host
	 * gets a scope of its own instead, outside the service, with the
	 * limits as scope properties.
	 */
	if (statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_MAGIC &&
	    getenv("INVOCATION_ID") != NULL &&
	    access(SYSTEMD_RUN, X_OK) == 0)
		mech = M_SCOPE;
	else if (statfs(CGROUP_ROOT, &sf) == 0 &&
	    sf.f_type == CGROUP2_MAGIC && setup_v2())
		mech = M_V2;
	else if ((v1_mem_base = v1_base("memory")) != NULL &&
	    (v1_pids_base = v1_base("pids")) != NULL)
		mech = M_V1;
	else
		mech = M_RLIMIT;
	sweep_stale(v2_base);
	sweep_stale(v1_mem_base);
	sweep_stale(v1_pids_base);
}

/* Side-effect free guess of what wrm_limits_init would choose. */
const char *
wrm_limits_probe(void)
{
	struct statfs sf;

	if (geteuid() != 0)
		return "rlimits (memory per process; no process limit)";
	if (statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_MAGIC &&
	    getenv("INVOCATION_ID") != NULL && access(SYSTEMD_RUN, X_OK) == 0)
		return "systemd scopes (MemoryMax and TasksMax per shell)";
	if (statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_MAGIC &&
	    access(CGROUP_ROOT "/cgroup.subtree_control", W_OK) == 0)
		return "cgroup v2 (memory and pids per shell)";
	if (access(CGROUP_ROOT "/memory", W_OK) == 0 &&
	    access(CGROUP_ROOT "/pids", W_OK) == 0)
		return "cgroup v1 (memory and pids per shell)";
	return "rlimits (memory per process; no process limit)";
}

const char *
wrm_limits_mechanism(void)
{
	switch (mech) {
	case M_V2: return "cgroup v2 (memory and pids per shell)";
	case M_V1: return "cgroup v1 (memory and pids per shell)";
	case M_RLIMIT: return "rlimits (memory per process; no process limit)";
	case M_SCOPE: return "systemd scopes (MemoryMax and TasksMax per shell)";
	default: return "none";
	}
}

static int
join(const char *base, pid_t pid, const char *file, const char *value,
    const char *procs)
{
	char dir[512], path[600], p[32];
	int r;

	snprintf(dir, sizeof(dir), "%s/host-%ld", base, (long)pid);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	if (value != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		if ((r = write_file(path, value)) != 0)
			return r;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, procs);
	snprintf(p, sizeof(p), "%ld", (long)pid);
	return write_file(path, p);
}

const char *const *
wrm_limits_wrapper(uint64_t memory_mb, uint64_t processes)
{
	static char mem[48], tasks[48];
	static const char *argv[12];
	size_t i = 0;

	if (mech != M_SCOPE)
		return NULL;
	if (memory_mb >= UNLIMITED)
		snprintf(mem, sizeof(mem), "MemoryMax=infinity");
	else
		snprintf(mem, sizeof(mem), "MemoryMax=%lluM",
		    (unsigned long long)memory_mb);
	if (processes >= UNLIMITED)
		snprintf(tasks, sizeof(tasks), "TasksMax=infinity");
	else
		snprintf(tasks, sizeof(tasks), "TasksMax=%llu",
		    (unsigned long long)processes);
	argv[i++] = SYSTEMD_RUN;
	argv[i++] = "--scope";
	argv[i++] = "--quiet";
	argv[i++] = "--collect";
	argv[i++] = "--slice=winrmd-shells.slice";
	argv[i++] = "-p";
	argv[i++] = mem;
	argv[i++] = "-p";
	argv[i++] = tasks;
	argv[i++] = "--";
	argv[i] = NULL;
	return argv;
}

int
wrm_limits_apply(pid_t pid, uint64_t memory_mb, uint64_t processes)
{
	char mem[32], pids[32];
	struct rlimit rl;
	int r = 0;

	snprintf(mem, sizeof(mem), "%llu",
	    (unsigned long long)memory_mb * 1024 * 1024);
	snprintf(pids, sizeof(pids), "%llu", (unsigned long long)processes);
	/*
	 * A control group only where there is a limit to enforce: making and
	 * removing groups costs about a tenth of a cmd shell's cycle.
	 */
	switch (mech) {
	case M_V2:
		if (memory_mb >= UNLIMITED && processes >= UNLIMITED)
			break;
		r = join(v2_base, pid, "memory.max", memory_mb >= UNLIMITED ?
		    "max" : mem, "cgroup.procs");
		if (r == 0)
			r = join(v2_base, pid, "pids.max", processes >=
			    UNLIMITED ? "max" : pids, "cgroup.procs");
		break;
	case M_V1:
		if (memory_mb < UNLIMITED)
			r = join(v1_mem_base, pid, "memory.limit_in_bytes",
			    mem, "cgroup.procs");
		if (r == 0 && processes < UNLIMITED)
			r = join(v1_pids_base, pid, "pids.max", pids,
			    "cgroup.procs");
		break;
	case M_RLIMIT:
		if (memory_mb < UNLIMITED) {
			rl.rlim_cur = rl.rlim_max = (rlim_t)memory_mb * 1024 *
			    1024;
			if (prlimit(pid, RLIMIT_AS, &rl, NULL) != 0)
				r = -errno;
		}
		break;
	default:
		break;
	}
	if (r != 0)
		error("limits for host %ld: %s", (long)pid, strerror(-r));
	return r;
}

void
wrm_limits_release(pid_t pid)
{
	char dir[512];

	if (mech == M_V2) {
		snprintf(dir, sizeof(dir), "%s/host-%ld", v2_base, (long)pid);
		rmdir(dir);
	} else if (mech == M_V1) {
		snprintf(dir, sizeof(dir), "%s/host-%ld", v1_mem_base,
		    (long)pid);
		rmdir(dir);
		snprintf(dir, sizeof(dir), "%s/host-%ld", v1_pids_base,
		    (long)pid);
		rmdir(dir);
	}
}
