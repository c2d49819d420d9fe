/*
 * Error codes used inside winrmd: 0 is success, a negative WRM_ERR_* is a
 * failure.  WRM_ERR_SYSTEM means errno holds the cause.  Protocol faults
 * sent to clients are a separate layer (fault.h).
 */
#ifndef WRM_ERR_H
#define WRM_ERR_H

#define WRM_OK_			0
#define WRM_ERR_SYSTEM		(-1)	/* errno is set */
#define WRM_ERR_ALLOC		(-2)
#define WRM_ERR_PARSE		(-3)
#define WRM_ERR_LIMIT		(-4)
#define WRM_ERR_AUTH		(-5)
#define WRM_ERR_DENIED		(-6)
#define WRM_ERR_NOT_FOUND	(-7)
#define WRM_ERR_STATE		(-8)
#define WRM_ERR_TIMEOUT		(-9)
#define WRM_ERR_AGAIN		(-10)
#define WRM_ERR_STORE		(-11)
#define WRM_ERR_PLUGIN		(-12)
#define WRM_ERR_INTERNAL	(-13)
#define WRM_ERR_EXISTS		(-14)
#define WRM_ERR_CLOSED		(-15)
#define WRM_ERR_CONFIG		(-16)
#define WRM_ERR_VERSION		(-17)
#define WRM_ERR_MAX_		(-17)

/* Text for r; "success" for 0, strerror(errno) for WRM_ERR_SYSTEM. */
const char *wrm_err(int r);

#endif
