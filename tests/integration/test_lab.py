"""The lab (winrmd --lab DIR) as a client library's CI uses it: lab.json
against docs/lab.schema.json, each certificate scenario with pywinrm, the
Go client, Python's ssl module and curl, the lab CRL and PKCS#12 file, and
the lab's own Kerberos realm with pywinrm and sealed GSSAPI clients.

The daemon is started with KRB5_CONFIG unset, as a CI job would: a
KRB5_CONFIG naming another configuration keeps the lab from starting its
realm (tested below)."""
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import types

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

import kdc as kdcmod
from conftest import SRCDIR
from test_auth import run_id as run_echo
from test_winrs_go import run_go, winrmgo  # noqa: F401 (fixture)

SCHEMA = SRCDIR / "docs" / "lab.schema.json"
SCENARIOS = ["valid", "wrong-name", "expired", "self-signed", "revoked"]
FAILING = {
    # scenario: (what OpenSSL says through requests, what Go says)
    "wrong-name": (r"doesn't match 'wrong-name\.invalid'|IP address mismatch"
                   r"|Hostname mismatch",
                   r"x509: .*(IP SANs|wrong-name\.invalid)"),
    "expired": (r"certificate has expired", r"x509: certificate has expired"),
    "self-signed": (r"self.signed certificate",
                    r"x509: certificate signed by unknown authority"),
}
REALM = "WINRMD.LAB"


@pytest.fixture
def clean_env(monkeypatch):
    """No Kerberos or CA bundle settings inherited from the environment."""
    for var in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME",
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.fixture
def lab(lab_factory, clean_env):
    return lab_factory()


def listeners(lab):
    ls = {x["scenario"]: x for x in lab.info["listeners"]}
    assert set(SCENARIOS) <= set(ls), (
        "lab.json lists only %s: winrmd must report each listener it "
        "starts (wrm_lab_listener_started)" % sorted(ls))
    return ls


def target(lab, scenario, ca_file=None):
    """A stand-in for the lab with the scenario's URL as its HTTPS URL."""
    return types.SimpleNamespace(
        http_url=lab.http_url, https_url=listeners(lab)[scenario]["url"],
        user=lab.user, password=lab.password,
        ca_file=ca_file or lab.ca_file)


def host_port(url):
    hp = url.split("/")[2]
    host, port = hp.rsplit(":", 1)
    return host.strip("[]"), int(port)


# -- lab.json ---------------------------------------------------------------

def validate(instance, schema):
    try:
        import jsonschema
    except ImportError:
        errors = list(mini_validate(instance, schema, schema, "$"))
        assert not errors, "\n".join(errors)
        return
    v = jsonschema.Draft202012Validator(schema)
    errors = sorted(v.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def mini_validate(x, s, root, where):
    """The subset of JSON Schema 2020-12 that lab.schema.json uses, for a
    machine without python3-jsonschema."""
    if "$ref" in s:
        node = root
        for part in s["$ref"].lstrip("#/").split("/"):
            node = node[part]
        yield from mini_validate(x, node, root, where)
    types_ = s.get("type")
    if types_ is not None:
        names = types_ if isinstance(types_, list) else [types_]
        py = {"object": dict, "array": list, "string": str,
              "boolean": bool, "null": type(None)}
        ok = any((n == "integer" and isinstance(x, int) and
                  not isinstance(x, bool)) or
                 (n in py and isinstance(x, py[n])) for n in names)
        if not ok:
            yield f"{where}: {x!r} is not of type {types_}"
            return
    if "const" in s and x != s["const"]:
        yield f"{where}: {x!r} is not {s['const']!r}"
    if "enum" in s and x not in s["enum"]:
        yield f"{where}: {x!r} is not one of {s['enum']}"
    if isinstance(x, str):
        if len(x) < s.get("minLength", 0):
            yield f"{where}: too short"
        if "pattern" in s and not re.search(s["pattern"], x):
            yield f"{where}: {x!r} does not match {s['pattern']}"
    if isinstance(x, int) and "minimum" in s and x < s["minimum"]:
        yield f"{where}: {x} < {s['minimum']}"
    if isinstance(x, list):
        if len(x) < s.get("minItems", 0):
            yield f"{where}: fewer than {s['minItems']} items"
        if "maxItems" in s and len(x) > s["maxItems"]:
            yield f"{where}: more than {s['maxItems']} items"
        if s.get("uniqueItems") and len(set(map(json.dumps, x))) != len(x):
            yield f"{where}: items not unique"
        for i, item in enumerate(x):
            if "items" in s:
                yield from mini_validate(item, s["items"], root,
                                         f"{where}[{i}]")
    if isinstance(x, dict):
        for k in s.get("required", []):
            if k not in x:
                yield f"{where}: {k} is missing"
        props = s.get("properties", {})
        for k, v in x.items():
            if k in props:
                yield from mini_validate(v, props[k], root, f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                yield f"{where}: unexpected {k}"
    if "if" in s:
        branch = "then" if not list(mini_validate(x, s["if"], root, where)) \
            else "else"
        if branch in s:
            yield from mini_validate(x, s[branch], root, where)


def test_lab_json_matches_schema(lab):
    schema = json.loads(SCHEMA.read_text())
    info = json.loads((lab.dir / "lab.json").read_text())
    validate(info, schema)
    # The first lab.json's keys, unchanged.
    assert info["http_url"] == listeners(lab)["http"]["url"]
    assert info["https_url"] == listeners(lab)["valid"]["url"]
    assert info["pid"] == lab.proc.pid
    assert info["ca_file"].endswith("/ca.pem")
    assert info["users"][0]["name"] == info["user"]
    assert info["users"][0]["password"] == info["password"]
    assert [r["path"] for r in info["redirects"]] == [
        "/wsman-redirect", "/wsman-redirect/chain",
        "/wsman-redirect/too-many", "/wsman-redirect/https"]
    assert {f["value"] for f in info["faults"]} == set(FAULTS)
    # Every listener answers, each on its own port.
    ports = [host_port(x["url"])[1] for x in info["listeners"]]
    assert len(set(ports)) == len(ports) == 6
    for x in info["listeners"]:
        socket.create_connection(host_port(x["url"]), timeout=5).close()
        if x["transport"] == "https":
            assert x["certificate"] and os.path.exists(x["certificate"])
            assert x["passes_with"] and x["fails_with"]
    # The lines scripts read with sed stay single (bench/run.sh jget).
    text = (lab.dir / "lab.json").read_text()
    for key in ("http_url", "https_url", "user", "password", "pid"):
        assert len(re.findall(rf'^ *"{key}": ', text, re.M)) == 1, key
    assert (lab.dir / "lab.json").stat().st_mode & 0o077 == 0


IDENTIFY = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/'
            'wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/>'
            '</s:Body></s:Envelope>')


def curl_post(lab, url, *extra):
    r = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w",
         "%{http_code} %{num_redirects} %{url_effective}",
         "--cacert", lab.ca_file, "-H", "WSMANIDENTIFY: unauthenticated",
         "-H", "Content-Type: application/soap+xml;charset=UTF-8",
         "--data-binary", IDENTIFY, url] + list(extra),
        capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def test_lab_redirections(lab):
    """Each redirection of lab.json, followed by curl with exactly as many
    redirections allowed as it has hops, refused with one fewer, and by
    pywinrm (through Python requests) to a working shell."""
    for rd in lab.info["redirects"]:
        hops = rd["hops"]
        rc, out = curl_post(lab, rd["url"], "-L", "--max-redirs", str(hops))
        code, n, final = out.split()
        assert (rc, code, int(n)) == (0, "200", hops), (rd, out)
        if rd["location"] == "listener:HTTPS":
            assert final == lab.info["https_url"]
        else:
            assert final == lab.info["http_url"]
        rc, out = curl_post(lab, rd["url"], "-L", "--max-redirs",
                            str(hops - 1))
        assert rc == 47, (rd, rc, out)      # too many redirects
        p = Protocol(endpoint=rd["url"], transport="basic",
                     username=lab.user, password=lab.password,
                     server_cert_validation="validate",
                     ca_trust_path=lab.ca_file)
        if rd["location"] == "listener:HTTPS":
            # requests drops the credentials when a redirection changes
            # scheme or port: the HTTPS listener asks for them (401).
            with pytest.raises(InvalidCredentialsError):
                run_echo(p)
        else:
            assert run_echo(p) == b"authenticated\n"
    assert lab.log().count("REDIRECT rule=lab-") >= 3 * 4


FAULTS = ["delay", "timeout", "access-denied", "quota", "http-503",
          "http-500", "reset", "trickle"]


def wsman_post(lab, fault=None, timeout=30):
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    if fault is not None:
        headers["X-Winrmd-Fault"] = fault
    body = (CREATE_ENVELOPE % lab.info["http_url"]).encode()
    t0 = time.monotonic()
    r = requests.post(lab.info["http_url"], data=body, headers=headers,
                      auth=(lab.user, lab.password), timeout=timeout)
    return r, time.monotonic() - t0


CREATE_ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
    '<s:Header><a:To>%s</a:To><a:ReplyTo><a:Address s:mustUnderstand="true">'
    'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'
    '</a:Address></a:ReplyTo><w:ResourceURI s:mustUnderstand="true">'
    'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd'
    '</w:ResourceURI><a:Action s:mustUnderstand="true">'
    'http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>'
    '<a:MessageID>uuid:7B3C52A1-0C0B-4A55-9D2B-5E4A0F0F0F01</a:MessageID>'
    '<w:OperationTimeout>PT20S</w:OperationTimeout>'
    '<w:SelectorSet><w:Selector Name="ShellId">'
    '00000000-0000-0000-0000-000000000000</w:Selector></w:SelectorSet>'
    '</s:Header><s:Body/></s:Envelope>')


def test_lab_faults_selected_by_header(lab):
    """Every fault of lab.json, chosen with its header on a Get for an
    unknown shell (normally the InvalidSelectors fault), and the same
    request without the header untouched."""
    plain, _ = wsman_post(lab)
    assert plain.status_code == 500 and b"2150858843" in plain.content
    for value in FAULTS:
        try:
            r, took = wsman_post(lab, value)
        except requests.exceptions.RequestException:
            assert value == "reset"
            continue
        if value == "reset":
            # urllib3 1.26 hands over a short body without complaint.
            assert len(r.content) < int(r.headers["Content-Length"])
            continue
        if value == "delay":
            assert took >= 2.9 and b"2150858843" in r.content
        elif value == "timeout":
            assert b"2150858793" in r.content and took < 2
        elif value == "access-denied":
            assert r.status_code == 500 and b'Code="5"' in r.content
            assert b"AccessDenied" in r.content
        elif value == "quota":
            assert b"2150859174" in r.content
            assert b"MSFT_WmiError" in r.content
        elif value.startswith("http-"):
            assert (r.status_code, r.content) == (int(value[5:]), b"")
        elif value == "trickle":
            assert b"2150858843" in r.content and took >= 0.02 * (
                len(plain.content) // 64 - 1)
    for value in FAULTS:
        assert f"FAULT_INJECTED rule=lab-{value}" in lab.log(), value


def test_lab_rule_turned_off_in_sessions_d(lab_factory, clean_env):
    lab = lab_factory(start=False)
    lab.start()
    lab.stop()
    (lab.dir / "sessions.d" / "quiet.conf").write_text(
        "[FaultInjection lab-timeout]\nEnabled = false\n")
    lab.start()
    r, _ = wsman_post(lab, "timeout")
    assert b"2150858843" in r.content       # the request's own fault


def free_block(n):
    """n consecutive free loopback ports."""
    for base in range(23000 + os.getpid() % 2000 * 10, 60000, 97):
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no block of free ports")


def test_fixed_port_puts_scenarios_after_https(lab_factory, clean_env):
    base = free_block(6)
    lab = lab_factory(args=["--port", str(base)])
    got = {k: host_port(v["url"])[1] for k, v in listeners(lab).items()}
    assert got == {"http": base, "valid": base + 1, "wrong-name": base + 2,
                   "expired": base + 3, "self-signed": base + 4,
                   "revoked": base + 5}
    lab.stop()
    # A scenario port held by something else: that listener gets a free
    # port, and the lab starts all the same.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 3))
        taken.listen(1)
        lab.start()
        got = {k: host_port(v["url"])[1] for k, v in listeners(lab).items()}
        assert got["expired"] not in range(base, base + 6)
        assert got["revoked"] == base + 5
        assert f"port {base + 3} is in use" in lab.log()


def test_scenario_settings_can_be_overridden(lab_factory, clean_env):
    """lab-run.conf is read before sessions.d: a listener can be turned
    off there, and lab.json lists what runs."""
    lab = lab_factory(config_lines=["[Listener HTTPS-expired]",
                                    "Enabled = false"])
    names = [x["scenario"] for x in lab.info["listeners"]]
    assert "expired" not in names and "revoked" in names


def test_missing_files_are_made_again_with_the_same_ca(lab_factory,
                                                       clean_env):
    """A lab directory from before the scenarios: winrmd.conf without
    lab-run.conf, no scenario certificates.  They are added; the CA and
    the valid certificate stay."""
    lab = lab_factory()
    ca = (lab.dir / "ca.pem").read_bytes()
    cert = (lab.dir / "cert.pem").read_bytes()
    lab.stop()
    conf = lab.dir / "winrmd.conf"
    conf.write_text("".join(ln for ln in conf.read_text().splitlines(True)
                            if "lab-run.conf" not in ln))
    for name in ("wrong-name", "expired", "self-signed", "revoked"):
        (lab.dir / f"{name}.pem").unlink()
        (lab.dir / f"{name}-key.pem").unlink()
    (lab.dir / "ca.crl").unlink()
    (lab.dir / "lab-run.conf").unlink()
    lab.start()
    assert (lab.dir / "ca.pem").read_bytes() == ca
    assert (lab.dir / "cert.pem").read_bytes() == cert
    text = conf.read_text()
    assert text.index("Include = lab-run.conf") < \
        text.index("Include = sessions.d/")
    assert set(SCENARIOS) <= set(listeners(lab))
    # The new certificates chain to the old CA.
    p = lab.protocol(url=listeners(lab)["revoked"]["url"])
    assert run_echo(p) == b"authenticated\n"


# -- certificate scenarios: pywinrm -----------------------------------------

def test_pywinrm_validating_with_the_lab_ca(lab):
    for scenario in SCENARIOS:
        url = listeners(lab)[scenario]["url"]
        p = Protocol(url, transport="basic", username=lab.user,
                     password=lab.password, server_cert_validation="validate",
                     ca_trust_path=lab.ca_file)
        if scenario in FAILING:
            with pytest.raises(requests.exceptions.SSLError,
                               match=FAILING[scenario][0]):
                run_echo(p)
        else:
            # revoked passes too: requests does not check revocation.
            assert run_echo(p) == b"authenticated\n", scenario


def test_pywinrm_ignoring_validation(lab, clean_env):
    # clean_env removed REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which make
    # pywinrm 0.3.0 validate in spite of 'ignore'.
    import urllib3
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    for scenario in SCENARIOS:
        p = Protocol(listeners(lab)[scenario]["url"], transport="basic",
                     username=lab.user, password=lab.password,
                     server_cert_validation="ignore")
        assert run_echo(p) == b"authenticated\n", scenario


def test_pywinrm_trusting_the_self_signed_certificate(lab):
    ss = listeners(lab)["self-signed"]
    p = Protocol(ss["url"], transport="basic", username=lab.user,
                 password=lab.password, server_cert_validation="validate",
                 ca_trust_path=ss["certificate"])
    assert run_echo(p) == b"authenticated\n"


def test_system_trust_store_refuses_the_lab_ca(lab):
    ctx = ssl.create_default_context()
    with socket.create_connection(host_port(lab.https_url), 10) as s:
        with pytest.raises(ssl.SSLCertVerificationError,
                           match="unable to get local issuer"):
            ctx.wrap_socket(s, server_hostname="127.0.0.1")


# -- certificate scenarios: Go (masterzen/winrm) ----------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_go_client(winrmgo, lab, scenario):  # noqa: F811
    t = target(lab, scenario)
    r = run_go(winrmgo, t, "echo", "https-ca").one()
    if scenario in FAILING:
        assert r["error"] and re.search(FAILING[scenario][1], r["error"]), r
    else:
        assert r["exit_code"] == 0 and r["stdout"] == "hello\n", r
    r = run_go(winrmgo, t, "echo", "https-insecure").one()
    assert r["exit_code"] == 0 and r["stdout"] == "hello\n", r


def test_go_client_pinning_the_self_signed_certificate(winrmgo,  # noqa: F811
                                                       lab):
    ss = listeners(lab)["self-signed"]
    t = target(lab, "self-signed", ca_file=ss["certificate"])
    r = run_go(winrmgo, t, "echo", "https-ca").one()
    assert r["exit_code"] == 0 and r["stdout"] == "hello\n", r


# -- revocation ----------------------------------------------------------------

def crl_context(lab):
    ctx = ssl.create_default_context(cafile=lab.ca_file)
    ctx.load_verify_locations(lab.info["crl_file"])
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def handshake(ctx, url, name="127.0.0.1"):
    with socket.create_connection(host_port(url), 10) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.version()


def test_revocation_checked_with_the_lab_crl(lab):
    ls = listeners(lab)
    ctx = crl_context(lab)
    assert handshake(ctx, ls["valid"]["url"])
    with pytest.raises(ssl.SSLCertVerificationError,
                       match="certificate revoked"):
        handshake(ctx, ls["revoked"]["url"])
    # Without the CRL check the same client accepts it.
    plain = ssl.create_default_context(cafile=lab.ca_file)
    assert handshake(plain, ls["revoked"]["url"])


def test_crl_and_distribution_point(lab):
    from cryptography import x509
    crl = x509.load_pem_x509_crl(open(lab.info["crl_file"], "rb").read())
    ca = x509.load_pem_x509_certificate(open(lab.ca_file, "rb").read())
    assert crl.is_signature_valid(ca.public_key())
    nxt = getattr(crl, "next_update_utc", None) or \
        crl.next_update.replace(tzinfo=datetime.timezone.utc)
    assert nxt.timestamp() > time.time() + 300 * 86400
    ls = listeners(lab)
    rev = x509.load_pem_x509_certificate(
        open(ls["revoked"]["certificate"], "rb").read())
    valid = x509.load_pem_x509_certificate(
        open(ls["valid"]["certificate"], "rb").read())
    assert crl.get_revoked_certificate_by_serial_number(rev.serial_number)
    assert crl.get_revoked_certificate_by_serial_number(
        valid.serial_number) is None
    cdp = rev.extensions.get_extension_for_class(
        x509.CRLDistributionPoints).value
    url = cdp[0].full_name[0].value
    assert url.startswith("file:///") and url.endswith("/ca.crl")
    assert os.path.samefile(url[len("file://"):], lab.info["crl_file"])


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_with_the_crl(lab):
    ls = listeners(lab)

    def curl(url, *extra):
        return subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert",
                               lab.ca_file] + list(extra) + [url],
                              capture_output=True, text=True, timeout=30)
    crl = ["--crlfile", lab.info["crl_file"]]
    assert curl(ls["valid"]["url"], *crl).returncode == 0
    assert curl(ls["revoked"]["url"]).returncode == 0
    r = curl(ls["revoked"]["url"], "-S", *crl)
    assert r.returncode == 60 and "revoked" in r.stderr, r.stderr


# -- the client certificate in PKCS#12 ---------------------------------------

def test_client_certificate_pfx(lab):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    cc = lab.info["client_certificate"]
    assert cc["cert"] == lab.client_cert and cc["key"] == lab.client_key
    assert cc["upn"] == f"{lab.user}@localhost"
    assert cc["pfx_password"] == lab.password
    key, cert, extra = pkcs12.load_key_and_certificates(
        open(cc["pfx"], "rb").read(), cc["pfx_password"].encode())
    pem = x509.load_pem_x509_certificate(open(cc["cert"], "rb").read())
    assert cert == pem
    der = pem.public_bytes(serialization.Encoding.DER)
    assert cc["thumbprint"] == hashlib.sha1(der).hexdigest().upper()
    assert key.public_key().public_numbers() == \
        pem.public_key().public_numbers()
    assert [c.subject for c in extra] == [
        x509.load_pem_x509_certificate(open(lab.ca_file, "rb").read()).subject]


# -- Kerberos in the lab -------------------------------------------------------

def kdc_tools():
    return all(shutil.which(t) or os.path.exists("/usr/sbin/" + t)
               for t in ("krb5kdc", "kdb5_util", "kadmin.local"))


needs_kdc = pytest.mark.skipif(not kdc_tools(),
                               reason="MIT krb5-kdc is not installed")


def running(pid):
    """Alive and not a zombie waiting for its new parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kinit(lab, monkeypatch):
    """kinit as the lab user with the lab's krb5.conf; the ticket cache is
    the one that krb5.conf names (in the lab directory)."""
    k = lab.info["kerberos"]
    assert k["available"], k
    monkeypatch.setenv("KRB5_CONFIG", k["krb5_conf"])
    kinit_prog = shutil.which("kinit")
    assert kinit_prog, "kinit is missing (krb5-user)"
    r = subprocess.run([kinit_prog, k["principal"]], input=lab.password +
                       "\n", capture_output=True, text=True, timeout=30,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    return k


@needs_kdc
def test_kerberos_realm_described(lab):
    k = lab.info["kerberos"]
    assert k["available"] and k["reason"] is None, k
    assert k["realm"] == REALM and k["principal"] == f"{lab.user}@{REALM}"
    assert f"HTTP/localhost@{REALM}" in k["service_principals"]
    assert f"HTTP/127.0.0.1@{REALM}" in k["service_principals"]
    assert "kerberos" in lab.info["users"][0]["auth"]
    host, port = k["kdc"].split(":")
    socket.create_connection((host, int(port)), 5).close()
    assert "Keytab = " + k["keytab"] in (lab.dir / "lab-run.conf").read_text()


@needs_kdc
def test_kerberos_pywinrm(lab, clean_env):
    kinit(lab, clean_env)
    p = Protocol(lab.http_url, transport="kerberos",
                 username=f"{lab.user}@{REALM}")
    assert run_echo(p) == b"authenticated\n"
    assert f"mech=Kerberos user={lab.user} principal={lab.user}@{REALM}" \
        in lab.log()


@needs_kdc
@pytest.mark.parametrize("mech,scheme,host", [
    ("krb5", "Negotiate", None), ("spnego", "Negotiate", None),
    ("krb5", "Kerberos", None), ("spnego", "Negotiate", "localhost"),
    ("spnego", "Negotiate", "hostname")])
def test_kerberos_sealed(lab_factory, clean_env, mech, scheme, host):
    """Sealed messages, as Windows sends them, with AllowUnencrypted off;
    the service principal for 127.0.0.1 (the URL), localhost and the host
    name."""
    from gssclient import GSSTransport
    lab = lab_factory(args=["-o", "Service.AllowUnencrypted=false"])
    kinit(lab, clean_env)
    if host == "hostname":
        host = socket.gethostname().lower()
        if f"HTTP/{host}@{REALM}" not in \
                lab.info["kerberos"]["service_principals"]:
            pytest.skip(f"no principal for host name {host}")
    p = Protocol(lab.http_url, transport="plaintext", username="x",
                 password="y")
    p.transport = GSSTransport(lab.http_url, mech=mech, scheme=scheme,
                               hostname=host)
    assert run_echo(p) == b"authenticated\n"
    assert p.transport.last_headers["Content-Type"].startswith(
        "multipart/encrypted")
    assert f"principal={lab.user}@{REALM}" in lab.log()


@needs_kdc
def test_kerberos_over_https_with_channel_binding(lab_factory, clean_env):
    from gssclient import GSSTransport
    lab = lab_factory(args=["-o", "Service/Auth.CbtHardeningLevel=Strict"])
    kinit(lab, clean_env)
    p = Protocol(lab.https_url, transport="plaintext", username="x",
                 password="y")
    p.transport = GSSTransport(lab.https_url, mech="spnego", seal=False,
                               ca_file=lab.ca_file)
    assert run_echo(p) == b"authenticated\n"


@needs_kdc
def test_kdc_lives_and_dies_with_winrmd(lab_factory, clean_env):
    lab = lab_factory()
    pidfile = lab.dir / "kdc" / "krb5kdc.pid"
    pid = int(pidfile.read_text())
    assert running(pid)
    keytab = (lab.dir / "kdc" / "http.keytab").read_bytes()
    lab.stop()
    for _ in range(100):
        if not running(pid):
            break
        time.sleep(0.05)
    else:
        pytest.fail("krb5kdc still runs after winrmd stopped")
    # The next start keeps the realm and its keys, and gives the new lab
    # password to the principal (lab.json was removed: a new password).
    old_password = lab.password
    lab.start()
    assert lab.password != old_password
    assert (lab.dir / "kdc" / "http.keytab").read_bytes() == keytab
    assert int(pidfile.read_text()) != pid
    kinit(lab, clean_env)
    p = Protocol(lab.http_url, transport="kerberos",
                 username=f"{lab.user}@{REALM}")
    assert run_echo(p) == b"authenticated\n"


@needs_kdc
def test_stale_kdc_of_a_killed_lab_is_stopped(lab_factory, clean_env):
    lab = lab_factory()
    pid = int((lab.dir / "kdc" / "krb5kdc.pid").read_text())
    lab.proc.send_signal(signal.SIGKILL)
    lab.proc.wait()
    lab.proc = None
    lab._log.close()
    assert running(pid)     # orphaned, still running
    lab.start()
    assert f"stopping krb5kdc pid {pid} left by an earlier run" in lab.log()
    for _ in range(100):
        if not running(pid):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the stale krb5kdc still runs")
    assert lab.info["kerberos"]["available"]


def test_kerberos_unavailable_with_foreign_krb5_config(lab_factory,
                                                       clean_env, tmp_path):
    other = tmp_path / "other-krb5.conf"
    other.write_text("[libdefaults]\n default_realm = ELSEWHERE.TEST\n")
    lab = lab_factory(env={"KRB5_CONFIG": str(other)})
    k = lab.info["kerberos"]
    assert not k["available"] and "KRB5_CONFIG" in k["reason"], k
    assert "kerberos" not in lab.info["users"][0]["auth"]
    assert "Keytab" not in (lab.dir / "lab-run.conf").read_text()
    validate(lab.info, json.loads(SCHEMA.read_text()))
    assert run_echo(lab.protocol()) == b"authenticated\n"


@needs_kdc
def test_kerberos_failure_leaves_the_lab_running(lab_factory, clean_env):
    """A realm that cannot be set up (here DIR/kdc is a file) costs
    Kerberos only; the log and lab.json say why."""
    lab = lab_factory(start=False)
    lab.dir.mkdir(parents=True)
    (lab.dir / "kdc").write_text("not a directory\n")
    lab.start()
    k = lab.info["kerberos"]
    assert not k["available"] and "kdc" in k["reason"], k
    assert "lab: no Kerberos realm:" in lab.log()
    assert run_echo(lab.protocol()) == b"authenticated\n"


@pytest.mark.parametrize("how", ["world-writable", "symlink"])
def test_lab_directory_not_ours_is_refused(lab_factory, clean_env, how):
    """The lab trusts the users, configuration and keys it finds in its
    directory, so one that others may write to (a shared /var/tmp path
    made by someone else) or a symbolic link is refused at start."""
    lab = lab_factory(start=False)
    if how == "world-writable":
        lab.dir.mkdir()
        lab.dir.chmod(0o777)
    else:
        real = lab.dir.parent / "elsewhere"
        real.mkdir(mode=0o700)
        lab.dir.symlink_to(real)
    with pytest.raises(AssertionError, match="no one else may write to"):
        lab.start(timeout=10)
    lab.proc = None
    assert not (lab.dir / "lab.json").exists()
