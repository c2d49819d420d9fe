/*
 * The daemon's local control socket (see admin.c), used by winrmctl.
 */
#ifndef WRM_ADMIN_H
#define WRM_ADMIN_H

int wrm_admin_start(const char *state_dir);
void wrm_admin_stop(void);

#endif
