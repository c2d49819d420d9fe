/*
 * systemd readiness notification and socket activation (see systemd.c).
 */
#ifndef WRM_SYSTEMD_H
#define WRM_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

/* Send a state ("READY=1", "RELOADING=1", "STOPPING=1") if supervised. */
void wrm_sd_notify(const char *state);
/* Early in main: take the passed listening sockets, clear LISTEN_*. */
void wrm_sd_take_listen_fds(void);
/* A passed socket bound to address:port, or -1; each is given once. */
int wrm_sd_listen_fd(const char *address, uint16_t port);
/* Close the passed sockets no listener took (logged). */
void wrm_sd_close_unused(void);

#endif
