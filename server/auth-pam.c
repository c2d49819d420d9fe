#include "config.h"

#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

#include "auth-pam.h"
#include "err.h"

struct conv_data {
	const char *password;
};

/* Answer every echo-off prompt with the password; nothing else. */
static int
conversation(int n, const struct pam_message **msg,
    struct pam_response **resp_r, void *appdata)
{
	struct conv_data *cd = appdata;
	struct pam_response *resp;
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if ((resp = calloc((size_t)n, sizeof(*resp))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			resp[i].resp = strdup(cd->password);
			if (resp[i].resp == NULL)
				goto fail;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			goto fail;
		}
	}
	*resp_r = resp;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++) {
		if (resp[i].resp != NULL) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
	return PAM_CONV_ERR;
}

int
wrm_pam_check(const char *service, const char *user, const char *password,
    const char *rhost, char **why_r)
{
	struct conv_data cd = { password };
	struct pam_conv conv = { conversation, &cd };
	pam_handle_t *pamh = NULL;
	int rc;

	*why_r = NULL;
	rc = pam_start(service, user, &conv, &pamh);
	if (rc != PAM_SUCCESS) {
		*why_r = strdup("PAM could not start");
		return WRM_ERR_AUTH;
	}
	if (rhost != NULL)
		pam_set_item(pamh, PAM_RHOST, rhost);
	rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc == PAM_SUCCESS)
		rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc != PAM_SUCCESS)
		*why_r = strdup(pam_strerror(pamh, rc));
	pam_end(pamh, rc);
	return rc == PAM_SUCCESS ? 0 : WRM_ERR_AUTH;
}
