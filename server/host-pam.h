/*
 * PAM account check and session around a system-mode host (see
 * host-pam.c).  Returns 0 in the child that goes on to serve the shell;
 * the parent never returns.  -1 (logged) when PAM refuses.  keep_fd, the
 * control socket, is closed in the parent.
 */
#ifndef WRM_HOST_PAM_H
#define WRM_HOST_PAM_H

int host_pam_session(const char *service, const char *user, int keep_fd);

#endif
