/*
 * Every configuration key, once.  Each table row is
 *   X(field, "Key", TYPE, "default", "one-line description")
 * and generates the structure member, its default, the parser entry, the
 * -T output and the list the test suite compares with winrmd.conf(5).
 * Key names and defaults follow Windows' winrm/config tree where one
 * exists.  TYPE is U64 (unsigned decimal), BOOL, STR or LIST (space or
 * comma separated words, kept as one string).
 */

/* [Service]: winrm/config and winrm/config/service */
#define WRM_SERVICE_KEYS(X) \
	X(max_envelope_size_kb, "MaxEnvelopeSizekb", U64, "500", \
	    "Largest request and response envelope, in KiB") \
	X(max_timeout_ms, "MaxTimeoutms", U64, "60000", \
	    "Upper bound on a request's OperationTimeout") \
	X(max_batch_items, "MaxBatchItems", U64, "32000", \
	    "Most items in one enumeration response") \
	X(max_connections, "MaxConnections", U64, "300", \
	    "Most simultaneous client connections per listener") \
	X(max_concurrent_operations_per_user, \
	    "MaxConcurrentOperationsPerUser", U64, "1500", \
	    "Most operations in progress for one user") \
	X(enumeration_timeout_ms, "EnumerationTimeoutms", U64, "240000", \
	    "Lifetime of an unused enumeration context") \
	X(max_packet_retrieval_time_seconds, "MaxPacketRetrievalTimeSeconds", \
	    U64, "120", "Time allowed to receive a request; idle keep-alive") \
	X(allow_unencrypted, "AllowUnencrypted", BOOL, "false", \
	    "Accept unencrypted requests on HTTP listeners") \
	X(allow_remote_access, "AllowRemoteAccess", BOOL, "true", \
	    "Serve requests at all (false refuses every operation)") \
	X(state_directory, "StateDirectory", STR, WRM_DEFAULT_STATEDIR, \
	    "Directory of the state store and host sockets") \
	X(plugin_directory, "PluginDirectory", STR, "", \
	    "Directories plugins are loaded from, colon-separated; empty: the installed one") \
	X(host_program, "HostProgram", STR, "", \
	    "Path of winrmd-host; empty: the installed one") \
	X(log_level, "LogLevel", STR, "INFO", \
	    "QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG1, DEBUG2 or DEBUG3") \
	X(host_name, "HostName", STR, "", \
	    "Name shown in fault Machine attributes; empty: the host name") \
	X(user_mode, "UserMode", BOOL, "false", \
	    "Run every shell as the daemon's own user, with the lab user table") \
	X(allow_groups, "AllowGroups", LIST, "winrmd-users", \
	    "Groups whose members may connect (root always may; user mode: all)") \
	X(pam_service, "PamService", STR, "winrmd", \
	    "PAM service: Basic passwords, and each shell's account check and session (system mode)") \
	X(host_pass_environment, "HostPassEnvironment", LIST, "LANG LC_ALL TZ", \
	    "Variables passed from the daemon's environment to system-mode shells") \
	X(fault_injection, "FaultInjection", BOOL, "false", \
	    "Apply the [FaultInjection] rules (lab mode turns it on)") \
	X(metrics_listen, "MetricsListen", STR, "", \
	    "ADDRESS:PORT serving Prometheus metrics on /metrics; empty: none") \
	X(min_idle_timeout_ms, "MinIdleTimeoutms", U64, "60000", \
	    "Smallest shell IdleTimeOut a client may ask for, in ms") \
	X(max_auth_failures, "MaxAuthFailures", U64, "10", \
	    "Failed logins per minute from one address or for one user before refusal") \
	X(audit_retention_days, "AuditRetentionDays", U64, "90", \
	    "Days the store keeps audit entries; 0 keeps them for ever")

/* [Service/Auth]: winrm/config/service/auth */
#define WRM_AUTH_KEYS(X) \
	X(basic, "Basic", BOOL, "false", \
	    "Accept HTTP Basic authentication") \
	X(kerberos, "Kerberos", BOOL, "true", \
	    "Accept Kerberos authentication") \
	X(negotiate, "Negotiate", BOOL, "true", \
	    "Accept Negotiate (SPNEGO: Kerberos or NTLM) authentication") \
	X(certificate, "Certificate", BOOL, "false", \
	    "Accept client certificate authentication on HTTPS") \
	X(credssp, "CredSSP", BOOL, "false", \
	    "Accept CredSSP authentication") \
	X(cbt_hardening_level, "CbtHardeningLevel", STR, "Relaxed", \
	    "Channel binding check on HTTPS: None, Relaxed or Strict") \
	X(keytab, "Keytab", STR, "", \
	    "Kerberos keytab (HTTP/host, host/host, WSMAN/host); empty: the default") \
	X(ntlm_user_file, "NtlmUserFile", STR, "", \
	    "NTLM accounts (smbpasswd format); empty: the lab user table in user mode")

/* [Winrs]: winrm/config/winrs */
#define WRM_WINRS_KEYS(X) \
	X(allow_remote_shell_access, "AllowRemoteShellAccess", BOOL, "true", \
	    "Allow shells at all") \
	X(idle_timeout, "IdleTimeout", U64, "7200000", \
	    "Default shell idle timeout, in ms") \
	X(max_concurrent_users, "MaxConcurrentUsers", U64, "2147483647", \
	    "Most users with shells at once") \
	X(max_shell_run_time, "MaxShellRunTime", U64, "2147483647", \
	    "Longest shell lifetime, in ms (informational, as on Windows)") \
	X(max_processes_per_shell, "MaxProcessesPerShell", U64, "2147483647", \
	    "Most processes in one shell's process tree") \
	X(max_memory_per_shell_mb, "MaxMemoryPerShellMB", U64, "2147483647", \
	    "Most memory of one shell's process tree, in MiB") \
	X(max_shells_per_user, "MaxShellsPerUser", U64, "2147483647", \
	    "Most shells one user may have open")

/* [Listener NAME]: winrm/config/listener */
#define WRM_LISTENER_KEYS(X) \
	X(address, "Address", STR, "*", \
	    "IP address to listen on; * for every address") \
	X(port, "Port", U64, "5985", "TCP port; 0 picks a free one") \
	X(transport, "Transport", STR, "HTTP", "HTTP or HTTPS") \
	X(url_prefix, "URLPrefix", STR, "wsman", \
	    "Path the service answers on") \
	X(certificate_file, "CertificateFile", STR, "", \
	    "PEM certificate chain (HTTPS)") \
	X(key_file, "KeyFile", STR, "", "PEM private key (HTTPS)") \
	X(client_ca_file, "ClientCAFile", STR, "", \
	    "PEM CAs whose client certificates are requested and accepted (HTTPS)") \
	X(client_crl_file, "ClientCRLFile", STR, "", \
	    "PEM CRLs of those CAs: revoked client certificates are refused (HTTPS)") \
	X(tls_priorities, "TlsPriorities", STR, \
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", \
	    "GnuTLS priority string: protocol versions and ciphers (HTTPS)") \
	X(enabled, "Enabled", BOOL, "true", "Whether the listener is active") \
	X(hostname, "Hostname", STR, "", "Host name clients use (informational)")

/* [CertificateMapping NAME]: winrm/config/service/certmapping */
#define WRM_CERTMAP_KEYS(X) \
	X(subject, "Subject", STR, "", \
	    "Client certificate UPN or e-mail SAN; * or *@domain for any") \
	X(issuer, "Issuer", STR, "", \
	    "SHA-1 thumbprint of an issuing CA certificate in the chain") \
	X(user_name, "UserName", STR, "", \
	    "Local account the certificate maps to") \
	X(enabled, "Enabled", BOOL, "true", "Whether the mapping is used")

/* [Redirect NAME]: HTTP redirections, for -AllowRedirection tests */
#define WRM_REDIRECT_KEYS(X) \
	X(path, "Path", STR, "", \
	    "Request path it answers (also PATH/1 .. PATH/Hops-1 of a chain)") \
	X(client, "Client", STR, "", \
	    "Only for this client address; empty: any") \
	X(user, "User", STR, "", \
	    "Only for this authenticated user (then after authentication)") \
	X(status, "Status", U64, "307", "301, 302, 307 or 308") \
	X(location, "Location", STR, "", \
	    "Where to: an absolute URL, or a path on the same listener") \
	X(hops, "Hops", U64, "1", \
	    "Redirections before Location: a chain of this many") \
	X(enabled, "Enabled", BOOL, "true", "Whether the rule applies")

/* [FaultInjection NAME]: failures on demand (needs Service.FaultInjection) */
#define WRM_FAULT_KEYS(X) \
	X(path, "Path", STR, "", "Only requests to this path; empty: any") \
	X(action, "Action", STR, "", \
	    "Only this operation (Create, Receive, ...); empty: any") \
	X(configuration, "Configuration", STR, "", \
	    "Only shells of this session configuration; empty: any") \
	X(header, "Header", STR, "", \
	    "Only requests with this header, as \"Name: value\"; empty: any") \
	X(kind, "Kind", STR, "fault", \
	    "delay, timeout, fault, quota, http, reset or trickle") \
	X(nth, "Nth", U64, "0", \
	    "Only the Nth matching request (counted from 1); 0: every one") \
	X(every, "Every", U64, "1", "Every Nth matching request") \
	X(delay_ms, "DelayMs", U64, "0", \
	    "delay: how long the answer waits; trickle: pause between pieces") \
	X(fault_code, "FaultCode", U64, "2150858752", \
	    "fault: the WSManFault code (its fault subcode follows Windows')") \
	X(message, "Message", STR, "", "fault: the fault's message") \
	X(http_status, "HttpStatus", U64, "503", "http: the HTTP status") \
	X(trickle_bytes, "TrickleBytes", U64, "64", \
	    "trickle: bytes per piece") \
	X(enabled, "Enabled", BOOL, "true", "Whether the rule applies")

/* [SessionConfiguration NAME] */
#define WRM_SESSION_KEYS(X) \
	X(plugin, "Plugin", STR, "", "Plugin name (a file in PluginDirectory)") \
	X(resource_uri, "ResourceURI", STR, "", \
	    "Resource URI; default http://schemas.microsoft.com/powershell/NAME") \
	X(enabled, "Enabled", BOOL, "true", \
	    "Whether new shells may be created") \
	X(allow_users, "AllowUsers", LIST, "", \
	    "Users allowed to use it (empty: everyone the service allows)") \
	X(allow_groups, "AllowGroups", LIST, "", \
	    "Groups allowed to use it") \
	X(deny_users, "DenyUsers", LIST, "", \
	    "Users refused even when allowed otherwise") \
	X(deny_groups, "DenyGroups", LIST, "", \
	    "Groups whose members are refused even when allowed otherwise") \
	X(run_as_user, "RunAsUser", STR, "", \
	    "Run every shell as this user whoever the caller is") \
	X(output_buffering_mode, "OutputBufferingMode", STR, "Block", \
	    "Block or Drop: what a disconnected shell does when its buffer fills") \
	X(idle_timeout_ms, "IdleTimeoutms", U64, "7200000", \
	    "Default shell idle timeout, in ms") \
	X(max_idle_timeout_ms, "MaxIdleTimeoutms", U64, "2147483647", \
	    "Largest idle timeout a client may ask for, in ms") \
	X(use_shared_process, "UseSharedProcess", BOOL, "false", \
	    "One host process for all shells of a user on this configuration") \
	X(max_shells_per_user, "MaxShellsPerUser", U64, "2147483647", \
	    "Most shells one user may have on this configuration") \
	X(max_concurrent_users, "MaxConcurrentUsers", U64, "2147483647", \
	    "Most users with shells on this configuration at once") \
	X(max_concurrent_commands_per_shell, "MaxConcurrentCommandsPerShell", \
	    U64, "2147483647", "Most commands one shell may have") \
	X(max_memory_per_shell_mb, "MaxMemoryPerShellMB", U64, "2147483647", \
	    "Most memory of one shell's process tree, in MiB") \
	X(max_processes_per_shell, "MaxProcessesPerShell", U64, "2147483647", \
	    "Most processes in one shell's process tree") \
	X(output_buffer_kb, "OutputBufferSizekb", U64, "16384", \
	    "Output buffered per shell before the command is paused, in KiB") \
	X(warm_pool_size, "WarmPoolSize", U64, "0", \
	    "Hosts kept started ahead of demand per user (PowerShell: with pwsh)") \
	X(warm_pool_ttl_s, "WarmPoolTtlSeconds", U64, "300", \
	    "How long an unused warm host is kept")
