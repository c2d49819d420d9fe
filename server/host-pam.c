/*
 * winrmd-host in system mode: the PAM account check and session for the
 * account a shell runs as, the way login services open one.  The session
 * must be closed with root privileges after the shell ends, so the host
 * forks: the parent keeps root, the PAM handle and nothing else, waits
 * for the child (which drops privileges and serves the shell), passes on
 * the signals it gets, then closes the session and exits with the child's
 * status.
 */
#include "config.h"

#include <errno.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host-pam.h"
#include "log.h"

static pid_t child;

/* No one is there to answer prompts: any a module makes fails. */
static int
no_conv(int n, const struct pam_message **msg, struct pam_response **resp,
    void *data)
{
	(void)n;
	(void)msg;
	(void)resp;
	(void)data;
	return PAM_CONV_ERR;
}

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int
host_pam_session(const char *service, const char *user, int keep_fd)
{
	struct pam_conv conv = { no_conv, NULL };
	pam_handle_t *ph = NULL;
	char **env, **e;
	int r, status = 0;
	struct sigaction sa;

	if ((r = pam_start(service, user, &conv, &ph)) != PAM_SUCCESS) {
		error("PAM service %s: %s", service, pam_strerror(ph, r));
		return -1;
	}
	if ((r = pam_acct_mgmt(ph, PAM_SILENT)) != PAM_SUCCESS) {
		error("PAM refused the account %s: %s", user,
		    pam_strerror(ph, r));
		pam_end(ph, r);
		return -1;
	}
	if ((r = pam_setcred(ph, PAM_ESTABLISH_CRED | PAM_SILENT)) !=
	    PAM_SUCCESS ||
	    (r = pam_open_session(ph, PAM_SILENT)) != PAM_SUCCESS) {
		error("PAM session for %s: %s", user, pam_strerror(ph, r));
		pam_end(ph, r);
		return -1;
	}
	/* What session modules set goes to the shell. */
	if ((env = pam_getenvlist(ph)) != NULL) {
		for (e = env; *e != NULL; e++) {
			putenv(*e);	/* the environment keeps the string */
		}
		free(env);
	}
	if ((child = fork()) < 0) {
		error("fork: %s", strerror(errno));
		pam_close_session(ph, PAM_SILENT);
		pam_end(ph, PAM_SUCCESS);
		return -1;
	}
	if (child == 0) {
		/*
		 * The session is the parent's to close: release only this
		 * copy of the handle, without the modules' cleanups.
		 */
		pam_end(ph, PAM_SUCCESS | PAM_DATA_SILENT);
		return 0;
	}
	/* Parent: only wait; the control socket is the child's. */
	close(keep_fd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	pam_close_session(ph, PAM_SILENT);
	pam_setcred(ph, PAM_DELETE_CRED | PAM_SILENT);
	pam_end(ph, PAM_SUCCESS);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
