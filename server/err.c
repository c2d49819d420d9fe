#include "config.h"

#include <errno.h>
#include <string.h>

#include "err.h"

static const char *const texts[] = {
	"success",
	"system error",
	"out of memory",
	"malformed input",
	"limit exceeded",
	"authentication failed",
	"access denied",
	"not found",
	"invalid state",
	"timed out",
	"try again",
	"store error",
	"plugin error",
	"internal error",
	"already exists",
	"connection closed",
	"configuration error",
	"version mismatch",
};

const char *
wrm_err(int r)
{
	if (r == WRM_ERR_SYSTEM)
		return strerror(errno);
	if (r > 0 || r < WRM_ERR_MAX_)
		return "unknown error";
	return texts[-r];
}
