/*
 * Basic authentication against PAM (system mode), service PamService.
 * Blocking: called on a worker thread only.
 */
#ifndef WRM_AUTH_PAM_H
#define WRM_AUTH_PAM_H

/* 0 when user/password authenticate and the account is valid. */
int wrm_pam_check(const char *service, const char *user,
    const char *password, const char *rhost, char **why_r);

#endif
