/* The plugin ABI's error codes, for server code that does not need the rest. */
#ifndef WRM_PLUGIN_CODES_H
#define WRM_PLUGIN_CODES_H
#include <winrmd/plugin.h>
#endif
