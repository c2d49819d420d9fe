/*
 * winrm/config over WS-Management: Get of the configuration resources
 * (config, config/service, config/service/auth, config/winrs, one
 * listener, one plugin, that is one session configuration), Enumerate of
 * the listeners and plugins, and Put of the settings that can
 * change while the service runs.  A Put is kept in
 * StateDirectory/winrm-config.conf, read after the configuration file at
 * every start and reload, as Windows keeps winrm set in its own store.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "soap.h"
#include "wsman.h"

#define NS_CFG_URI	"http://schemas.microsoft.com/wbem/wsman/1/config"

/* An element of winrm/config: where it lives here, or a fixed value. */
struct field {
	const char *group;	/* "", "Service", "Auth", "DefaultPorts", "Winrs" */
	const char *element;
	const char *section;	/* winrmd's section, or NULL: constant */
	const char *key;
	const char *constant;
	bool writable;
};

static const struct field fields[] = {
	{ "", "MaxEnvelopeSizekb", "Service", "MaxEnvelopeSizekb", NULL, true },
	{ "", "MaxTimeoutms", "Service", "MaxTimeoutms", NULL, true },
	{ "", "MaxBatchItems", "Service", "MaxBatchItems", NULL, true },
	{ "", "MaxProviderRequests", NULL, NULL, "4294967295", false },
	{ "Service", "MaxConcurrentOperations", NULL, NULL, "4294967295",
	    false },
	{ "Service", "MaxConcurrentOperationsPerUser", "Service",
	    "MaxConcurrentOperationsPerUser", NULL, true },
	{ "Service", "EnumerationTimeoutms", "Service", "EnumerationTimeoutms",
	    NULL, true },
	{ "Service", "MaxConnections", "Service", "MaxConnections", NULL,
	    false },
	{ "Service", "MaxPacketRetrievalTimeSeconds", "Service",
	    "MaxPacketRetrievalTimeSeconds", NULL, false },
	{ "Service", "AllowUnencrypted", "Service", "AllowUnencrypted", NULL,
	    true },
	{ "Auth", "Basic", "Service/Auth", "Basic", NULL, true },
	{ "Auth", "Kerberos", "Service/Auth", "Kerberos", NULL, true },
	{ "Auth", "Negotiate", "Service/Auth", "Negotiate", NULL, true },
	{ "Auth", "Certificate", "Service/Auth", "Certificate", NULL, true },
	{ "Auth", "CredSSP", "Service/Auth", "CredSSP", NULL, false },
	{ "Auth", "CbtHardeningLevel", "Service/Auth", "CbtHardeningLevel",
	    NULL, true },
	{ "DefaultPorts", "HTTP", NULL, NULL, "5985", false },
	{ "DefaultPorts", "HTTPS", NULL, NULL, "5986", false },
	{ "Service", "IPv4Filter", NULL, NULL, "*", false },
	{ "Service", "IPv6Filter", NULL, NULL, "*", false },
	{ "Service", "EnableCompatibilityHttpListener", NULL, NULL, "false",
	    false },
	{ "Service", "EnableCompatibilityHttpsListener", NULL, NULL, "false",
	    false },
	{ "Service", "CertificateThumbprint", NULL, NULL, "", false },
	{ "Service", "AllowRemoteAccess", "Service", "AllowRemoteAccess", NULL,
	    true },
	{ "Winrs", "AllowRemoteShellAccess", "Winrs", "AllowRemoteShellAccess",
	    NULL, true },
	{ "Winrs", "IdleTimeout", "Winrs", "IdleTimeout", NULL, true },
	{ "Winrs", "MaxConcurrentUsers", "Winrs", "MaxConcurrentUsers", NULL,
	    true },
	{ "Winrs", "MaxShellRunTime", "Winrs", "MaxShellRunTime", NULL, true },
	{ "Winrs", "MaxProcessesPerShell", "Winrs", "MaxProcessesPerShell",
	    NULL, true },
	{ "Winrs", "MaxMemoryPerShellMB", "Winrs", "MaxMemoryPerShellMB", NULL,
	    true },
	{ "Winrs", "MaxShellsPerUser", "Winrs", "MaxShellsPerUser", NULL,
	    true },
};

#define N_FIELDS	(sizeof(fields) / sizeof(fields[0]))

static int
put_group(struct wrm_buf *b, const char *group)
{
	char v[512];
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < N_FIELDS; i++) {
		if (strcmp(fields[i].group, group) != 0)
			continue;
		if (fields[i].section == NULL)
			snprintf(v, sizeof(v), "%s", fields[i].constant);
		else if (wrm_conf_get(D.conf, fields[i].section, fields[i].key,
		    v, sizeof(v)) != 0)
			continue;
		r = wrm_buf_printf(b, "<cfg:%s>", fields[i].element);
		if (r == 0) r = wrm_buf_put_xml(b, v);
		if (r == 0) r = wrm_buf_printf(b, "</cfg:%s>", fields[i].element);
	}
	return r;
}

static int
put_service(struct wrm_buf *b)
{
	int r = wrm_buf_puts(b, "<cfg:Service>");

	if (r == 0) r = put_group(b, "Service");
	if (r == 0) r = wrm_buf_puts(b, "<cfg:Auth>");
	if (r == 0) r = put_group(b, "Auth");
	if (r == 0) r = wrm_buf_puts(b, "</cfg:Auth><cfg:DefaultPorts>");
	if (r == 0) r = put_group(b, "DefaultPorts");
	if (r == 0) r = wrm_buf_puts(b, "</cfg:DefaultPorts></cfg:Service>");
	return r;
}

/* The representation of one resource; WRM_ERR_NOT_FOUND if unknown. */
static int
render(struct wrm_buf *b, const char *res)
{
	int r;

	if (*res == '\0') {
		r = wrm_buf_puts(b, "<cfg:Config>");
		if (r == 0) r = put_group(b, "");
		if (r == 0) r = put_service(b);
		if (r == 0) r = wrm_buf_puts(b, "<cfg:Winrs>");
		if (r == 0) r = put_group(b, "Winrs");
		if (r == 0) r = wrm_buf_puts(b, "</cfg:Winrs></cfg:Config>");
		return r;
	}
	if (strcasecmp(res, "/service") == 0)
		return put_service(b);
	if (strcasecmp(res, "/service/auth") == 0) {
		r = wrm_buf_puts(b, "<cfg:Auth>");
		if (r == 0) r = put_group(b, "Auth");
		if (r == 0) r = wrm_buf_puts(b, "</cfg:Auth>");
		return r;
	}
	if (strcasecmp(res, "/winrs") == 0) {
		r = wrm_buf_puts(b, "<cfg:Winrs>");
		if (r == 0) r = put_group(b, "Winrs");
		if (r == 0) r = wrm_buf_puts(b, "</cfg:Winrs>");
		return r;
	}
	return WRM_ERR_NOT_FOUND;
}

/* One listener, as winrm/config/listener shows it. */
int
wsman_put_listener(struct wrm_buf *b, const struct wrm_listener_conf *l)
{
	int r;

	r = wrm_buf_puts(b, "<cfg:Listener xmlns:cfg=\"" NS_CFG_URI
	    "/listener\"><cfg:Address>");
	if (r == 0) r = wrm_buf_put_xml(b, strcmp(l->address, "*") == 0 ?
	    "*" : l->address);
	if (r == 0) r = wrm_buf_puts(b, "</cfg:Address><cfg:Transport>");
	if (r == 0) r = wrm_buf_put_xml(b, l->transport);
	if (r == 0) r = wrm_buf_printf(b, "</cfg:Transport><cfg:Port>%llu"
	    "</cfg:Port><cfg:Hostname>", (unsigned long long)l->port);
	if (r == 0) r = wrm_buf_put_xml(b, l->hostname);
	if (r == 0) r = wrm_buf_printf(b, "</cfg:Hostname><cfg:Enabled>%s"
	    "</cfg:Enabled><cfg:URLPrefix>", l->enabled ? "true" : "false");
	if (r == 0) r = wrm_buf_put_xml(b, l->url_prefix);
	if (r == 0) r = wrm_buf_puts(b, "</cfg:URLPrefix>"
	    "<cfg:CertificateThumbprint></cfg:CertificateThumbprint>"
	    "<cfg:ListeningOn>");
	if (r == 0) r = wrm_buf_put_xml(b, l->address);
	if (r == 0) r = wrm_buf_puts(b, "</cfg:ListeningOn></cfg:Listener>");
	return r;
}

/* The file a configuration's plugin is loaded from (PluginDirectory). */
static void
plugin_file(const char *plugin, char *out, size_t outlen)
{
	const char *p = D.plugin_dir != NULL ? D.plugin_dir : "";
	size_t n;

	snprintf(out, outlen, "%s.so", plugin);
	while (*p != '\0') {
		n = strcspn(p, ":");
		snprintf(out, outlen, "%.*s/%s.so", (int)n, p, plugin);
		if (access(out, R_OK) == 0)
			return;
		p += n;
		if (*p == ':')
			p++;
	}
	/* Not found: name it in the first directory. */
	n = strcspn(D.plugin_dir != NULL ? D.plugin_dir : "", ":");
	snprintf(out, outlen, "%.*s/%s.so", (int)n, D.plugin_dir != NULL ?
	    D.plugin_dir : "", plugin);
}

static int
put_attr(struct wrm_buf *b, const char *name, const char *value)
{
	int r = wrm_buf_printf(b, " %s=\"", name);

	if (r == 0) r = wrm_buf_put_xml(b, value != NULL ? value : "");
	if (r == 0) r = wrm_buf_putc(b, '"');
	return r;
}

/*
 * One session configuration as winrm/config/plugin shows it: Windows'
 * PlugInConfiguration document, with the plugin's own options as its
 * InitializationParameters.
 */
int
wsman_put_plugin(struct wrm_buf *b, const struct wrm_session_conf *sc)
{
	char file[1024];
	size_t i;
	int r;

	plugin_file(sc->plugin, file, sizeof(file));
	r = wrm_buf_puts(b, "<PlugInConfiguration xmlns=\"" NS_CFG_URI
	    "/PluginConfiguration\"");
	if (r == 0) r = put_attr(b, "Name", sc->name);
	if (r == 0) r = put_attr(b, "Filename", file);
	if (r == 0) r = wrm_buf_printf(b, " SDKVersion=\"1\""
	    " XmlRenderingType=\"text\" Architecture=\"%d\""
	    " Enabled=\"%s\" UseSharedProcess=\"%s\""
	    " ProcessIdleTimeoutSec=\"%llu\" AutoRestart=\"false\"",
	    (int)(sizeof(void *) * 8), sc->enabled ? "true" : "false",
	    sc->use_shared_process ? "true" : "false",
	    (unsigned long long)(sc->use_shared_process ||
	    sc->warm_pool_size > 0 ? sc->warm_pool_ttl_s : 0));
	if (r == 0) r = put_attr(b, "RunAsUser", sc->run_as_user);
	if (r == 0) r = put_attr(b, "RunAsPassword", "");
	if (r == 0) r = put_attr(b, "OutputBufferingMode",
	    sc->output_buffering_mode);
	if (r == 0) r = wrm_buf_puts(b, "><InitializationParameters>");
	if (r == 0) r = wrm_buf_puts(b, "<Param Name=\"Plugin\"");
	if (r == 0) r = put_attr(b, "Value", sc->plugin);
	if (r == 0) r = wrm_buf_puts(b, "/>");
	for (i = 0; r == 0 && i < sc->n_options; i++) {
		r = wrm_buf_puts(b, "<Param");
		if (r == 0) r = put_attr(b, "Name", sc->options[i].key);
		if (r == 0) r = put_attr(b, "Value", sc->options[i].value);
		if (r == 0) r = wrm_buf_puts(b, "/>");
	}
	if (r == 0) r = wrm_buf_puts(b, "</InitializationParameters>"
	    "<Resources><Resource");
	if (r == 0) r = put_attr(b, "ResourceUri", sc->resource_uri);
	if (r == 0) r = wrm_buf_puts(b, " SupportsOptions=\"true\""
	    " ExactMatch=\"true\"><Capability Type=\"Shell\"/>"
	    "</Resource></Resources>");
	if (r == 0) r = wrm_buf_printf(b, "<Quotas IdleTimeoutms=\"%llu\""
	    " MaxIdleTimeoutms=\"%llu\" MaxConcurrentUsers=\"%llu\""
	    " MaxProcessesPerShell=\"%llu\" MaxMemoryPerShellMB=\"%llu\""
	    " MaxConcurrentCommandsPerShell=\"%llu\""
	    " MaxShellsPerUser=\"%llu\"/></PlugInConfiguration>",
	    (unsigned long long)sc->idle_timeout_ms,
	    (unsigned long long)sc->max_idle_timeout_ms,
	    (unsigned long long)sc->max_concurrent_users,
	    (unsigned long long)sc->max_processes_per_shell,
	    (unsigned long long)sc->max_memory_per_shell_mb,
	    (unsigned long long)sc->max_concurrent_commands_per_shell,
	    (unsigned long long)sc->max_shells_per_user);
	return r;
}

static bool
may_read(const struct wrm_op *op)
{
	return op->who->is_admin || D.user_mode;
}

/*
 * Answer op with the rendered document b (r: how rendering went), or with
 * an internal-error fault; b is freed.  Returns true (handled).
 */
static bool
send_document(struct wrm_op *op, const char *action, struct wrm_buf *b,
    int r)
{
	if (r == 0)
		r = wrm_soap_begin(&op->out, action, op->soap.message_id,
		    WRM_NS_X | WRM_NS_P | WRM_NS_CFG);
	if (r == 0)
		r = wrm_buf_put(&op->out, wrm_buf_ptr(b), wrm_buf_len(b));
	if (r == 0)
		r = wrm_soap_end(&op->out);
	wrm_buf_free(b);
	if (r != 0)
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
	else
		wrm_op_reply(op);
	return true;
}

bool
wsman_config_get(struct wrm_op *op)
{
	const char *uri = op->soap.resource_uri;
	size_t pl = strlen(URI_CONFIG);
	const char *addr, *tr;
	struct wrm_buf b;
	size_t i;
	int r;

	if (uri == NULL || strncasecmp(uri, URI_CONFIG, pl) != 0 ||
	    (uri[pl] != '\0' && uri[pl] != '/'))
		return false;
	if (!may_read(op)) {
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return true;
	}
	wrm_buf_init(&b, 0);
	if (strcasecmp(uri + pl, "/listener") == 0) {
		addr = wrm_soap_selector(&op->soap, "Address");
		tr = wrm_soap_selector(&op->soap, "Transport");
		r = WRM_ERR_NOT_FOUND;
		for (i = 0; addr != NULL && tr != NULL &&
		    i < D.conf->n_listeners; i++)
			if (strcasecmp(D.conf->listeners[i].address, addr) == 0 &&
			    strcasecmp(D.conf->listeners[i].transport, tr) == 0) {
				r = wsman_put_listener(&b,
				    &D.conf->listeners[i]);
				break;
			}
	} else if (strcasecmp(uri + pl, "/plugin") == 0) {
		const struct wrm_session_conf *sc;

		addr = wrm_soap_selector(&op->soap, "Name");
		sc = addr != NULL ? wrm_conf_session_by_name(D.conf, addr) :
		    NULL;
		r = sc != NULL ? wsman_put_plugin(&b, sc) : WRM_ERR_NOT_FOUND;
	} else
		r = render(&b, uri + pl);
	if (r == WRM_ERR_NOT_FOUND) {
		wrm_buf_free(&b);
		wrm_op_fault_id(op, strcasecmp(uri + pl, "/listener") == 0 ||
		    strcasecmp(uri + pl, "/plugin") == 0 ?
		    WRM_FAULT_INVALID_SELECTORS :
		    WRM_FAULT_DESTINATION_UNREACHABLE);
		return true;
	}
	return send_document(op, A_TRANSFER "GetResponse", &b, r);
}

/* ---- Put ---- */

static const struct field *
field_for(const char *group, const char *element)
{
	size_t i;

	for (i = 0; i < N_FIELDS; i++)
		if (strcasecmp(fields[i].group, group) == 0 &&
		    strcasecmp(fields[i].element, element) == 0)
			return &fields[i];
	return NULL;
}

/* The settings a Put made, as "Section.Key=value" lines (most recent last). */
static char *
puts_path(void)
{
	char *p;

	if (asprintf(&p, "%s/winrm-config.conf",
	    D.conf->service.state_directory) < 0)
		return NULL;
	return p;
}

/* Record section.key = value in winrm-config.conf (replacing it). */
static int
persist(const char *section, const char *key, const char *value)
{
	char *path = puts_path(), *tmp = NULL, line[1024], cur[64] = "";
	char want[64];
	FILE *in, *out;
	int r = 0;

	if (path == NULL || asprintf(&tmp, "%s.tmp", path) < 0) {
		free(path);
		return WRM_ERR_ALLOC;
	}
	snprintf(want, sizeof(want), "[%s]", section);
	if ((out = fopen(tmp, "we")) == NULL) {
		free(path);
		free(tmp);
		return WRM_ERR_SYSTEM;
	}
	fprintf(out, "# Settings changed with WS-Management Put (winrm set); "
	    "read after the\n# configuration file.  Written by winrmd.\n");
	/* Keep every other setting, section by section. */
	if ((in = fopen(path, "re")) != NULL) {
		while (fgets(line, sizeof(line), in) != NULL) {
			if (line[0] == '#' || line[0] == '\n')
				continue;
			if (line[0] == '[') {
				snprintf(cur, sizeof(cur), "%.*s",
				    (int)strcspn(line, "\n"), line);
				fputs(line, out);
				continue;
			}
			if (strcasecmp(cur, want) == 0 &&
			    strncasecmp(line, key, strlen(key)) == 0 &&
			    (line[strlen(key)] == ' ' ||
			    line[strlen(key)] == '='))
				continue;
			fputs(line, out);
		}
		fclose(in);
	}
	fprintf(out, "[%s]\n%s = %s\n", section, key, value);
	if (fflush(out) != 0 || fsync(fileno(out)) != 0)
		r = WRM_ERR_SYSTEM;
	fclose(out);
	if (r == 0 && rename(tmp, path) != 0)
		r = WRM_ERR_SYSTEM;
	if (r != 0)
		unlink(tmp);
	free(tmp);
	free(path);
	return r;
}

/*
 * Set one key of the running configuration, checked as a configuration
 * file would be; on an error the old value stays and why says it.
 */
static int
set_checked(const struct field *f, const char *value, char *why,
    size_t whylen)
{
	size_t ne = D.conf->n_errors, nw = D.conf->n_warnings;
	char old[512], assign[1024];
	int bad;

	if (wrm_conf_get(D.conf, f->section, f->key, old, sizeof(old)) != 0)
		return WRM_ERR_INTERNAL;
	snprintf(assign, sizeof(assign), "%s.%s=%s", f->section, f->key, value);
	bad = wrm_conf_set(D.conf, assign) != 0;
	if (!bad)
		wrm_conf_check(D.conf);
	bad = bad || D.conf->n_errors > ne;
	if (bad) {
		snprintf(why, whylen, "%s: %s. ", f->element,
		    D.conf->n_errors > ne ? D.conf->errors[ne] : "bad value");
		snprintf(assign, sizeof(assign), "%s.%s=%s", f->section,
		    f->key, old);
		wrm_conf_set(D.conf, assign);
	}
	wrm_conf_trim_messages(D.conf, ne, nw);
	return bad ? WRM_ERR_PARSE : 0;
}

/* Apply the elements under node (a group of the resource res). */
static int
apply_group(struct wrm_op *op, const xmlNode *node, const char *group,
    char *why, size_t whylen)
{
	const xmlNode *c;
	const struct field *f;
	char *v;
	const char *name;
	int r;

	for (c = node->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		name = (const char *)c->name;
		if (strcasecmp(name, "Service") == 0 ||
		    strcasecmp(name, "Auth") == 0 ||
		    strcasecmp(name, "Winrs") == 0 ||
		    strcasecmp(name, "DefaultPorts") == 0) {
			if ((r = apply_group(op, c, name, why, whylen)) != 0)
				return r;
			continue;
		}
		if ((f = field_for(group, name)) == NULL) {
			snprintf(why, whylen, "%s is not a setting of this "
			    "resource. ", name);
			return WRM_ERR_PARSE;
		}
		v = wrm_xml_text(c, false);
		if (f->section == NULL || !f->writable) {
			/* Setting a value to what it is is no change. */
			char cur[512] = "";

			if (f->section != NULL)
				wrm_conf_get(D.conf, f->section, f->key, cur,
				    sizeof(cur));
			else
				snprintf(cur, sizeof(cur), "%s", f->constant);
			if (v == NULL || strcasecmp(v, cur) != 0) {
				snprintf(why, whylen, "%s cannot be changed "
				    "while the service runs. ", name);
				free(v);
				return WRM_ERR_DENIED;
			}
			free(v);
			continue;
		}
		if (set_checked(f, v != NULL ? v : "", why, whylen) != 0) {
			free(v);
			return WRM_ERR_PARSE;
		}
		persist(f->section, f->key, v != NULL ? v : "");
		wrm_audit("CONFIG_PUT", "user=%s setting=%s.%s value=%s",
		    op->who->user, f->section, f->key, v != NULL ? v : "");
		free(v);
	}
	return 0;
}

bool
wsman_config_put(struct wrm_op *op)
{
	const char *uri = op->soap.resource_uri;
	size_t pl = strlen(URI_CONFIG), errs;
	const char *res, *group;
	char why[600];
	struct wrm_buf b;
	int r;

	if (uri == NULL || strncasecmp(uri, URI_CONFIG, pl) != 0 ||
	    (uri[pl] != '\0' && uri[pl] != '/'))
		return false;
	res = uri + pl;
	if (!op->who->is_admin && !D.user_mode) {
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return true;
	}
	group = *res == '\0' ? "" : strcasecmp(res, "/service") == 0 ?
	    "Service" : strcasecmp(res, "/service/auth") == 0 ? "Auth" :
	    strcasecmp(res, "/winrs") == 0 ? "Winrs" : NULL;
	if (group == NULL) {
		wrm_op_fault_id(op, strcasecmp(res, "/listener") == 0 ?
		    WRM_FAULT_ACTION_NOT_SUPPORTED :
		    WRM_FAULT_DESTINATION_UNREACHABLE);
		return true;
	}
	if (op->soap.payload == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return true;
	}
	why[0] = '\0';
	errs = D.conf->n_errors;
	r = apply_group(op, op->soap.payload, group, why, sizeof(why));
	(void)errs;
	if (r != 0) {
		wrm_op_fault_msg(op, r == WRM_ERR_DENIED ?
		    WRM_FAULT_ACCESS_DENIED : WRM_FAULT_INVALID_PARAMETER, 0,
		    why);
		return true;
	}
	wrm_buf_init(&b, 0);
	r = render(&b, res);
	return send_document(op, A_TRANSFER "PutResponse", &b, r);
}

char *
wsman_config_put_file(const char *state_dir)
{
	char *p;

	if (asprintf(&p, "%s/winrm-config.conf", state_dir) < 0)
		return NULL;
	if (access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}
