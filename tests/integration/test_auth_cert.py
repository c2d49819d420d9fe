"""Client certificate authentication (HTTPS, secprofile/https/mutual),
certificate mappings, the listener's TLS settings and certificate reload
on SIGHUP, against the real daemon with pywinrm, the Go client and plain
requests.  Test certificates are made here, signed by the lab CA (whose
key the lab directory keeps) or by a stranger CA."""
import datetime
import hashlib
import ipaddress
import os
import signal
import socket
import ssl
import time

import pytest
import requests
import winrm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from test_auth import CREATE, shells
from test_winrs_go import run_go, winrmgo  # noqa: F401 (fixture)

MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
HOUR = datetime.timedelta(hours=1)


def utf8_der(s):
    b = s.encode()
    assert len(b) < 128
    return bytes([0x0C, len(b)]) + b


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class CA:
    def __init__(self, cert, key):
        self.cert, self.key = cert, key

    @classmethod
    def of_lab(cls, lab):
        d = os.path.dirname(lab.ca_file)
        with open(lab.ca_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(d, "ca-key.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return cls(cert, key)

    @classmethod
    def stranger(cls):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "winrmd lab CA")])
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now() - HOUR)
                .not_valid_after(now() + 24 * HOUR)
                .add_extension(x509.BasicConstraints(True, None), True)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    def thumbprint(self):
        return hashlib.sha1(self.cert.public_bytes(
            serialization.Encoding.DER)).hexdigest().upper()

    def issue(self, tmp_path, name, upn=None, email=None, eku="client",
              not_before=None, not_after=None, dns=None, ips=None):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(
                 NameOID.COMMON_NAME, name)]))
             .issuer_name(self.cert.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(not_before or now() - HOUR)
             .not_valid_after(not_after or now() + 24 * HOUR))
        sans = []
        if upn:
            sans.append(x509.OtherName(UPN_OID, utf8_der(upn)))
        if email:
            sans.append(x509.RFC822Name(email))
        for d in dns or ():
            sans.append(x509.DNSName(d))
        for a in ips or ():
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if eku == "client" else
                 ExtendedKeyUsageOID.SERVER_AUTH]), False)
        cert = b.sign(self.key, hashes.SHA256())
        cp, kp = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return str(cp), str(kp)


def cert_session(lab, cert, key):
    return winrm.Session(lab.https_url, auth=(None, None),
                         transport="certificate", cert_pem=cert,
                         cert_key_pem=key, ca_trust_path=lab.ca_file)


def raw_create(lab, cert=None, url=None, auth=MUTUAL):
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    if auth:
        headers["Authorization"] = auth
    url = url or lab.https_url
    return requests.post(url, data=CREATE, headers=headers, cert=cert,
                         verify=lab.ca_file if url.startswith("https")
                         else True, timeout=30)


def audit_lines(lab, word):
    return [ln for ln in lab.log().splitlines() if word in ln]


# -- accepted -------------------------------------------------------------

def test_pywinrm_certificate(lab):
    r = cert_session(lab, lab.client_cert, lab.client_key).run_cmd(
        "echo", ["by certificate"])
    assert (r.status_code, r.std_out) == (0, b"by certificate\n")
    ok = audit_lines(lab, "AUTH_OK scheme=Certificate")
    assert ok and "user=lab" in ok[0] and "subject=lab@localhost" in ok[0]
    # Verified once per connection, not once per request.
    assert len(ok) == 1, ok


def test_go_certificate(winrmgo, lab):  # noqa: F811
    rep = run_go(winrmgo, lab, "echo", "https-ca", "-auth", "cert",
                 "-cert", lab.client_cert, "-key", lab.client_key)
    r = rep.one()
    assert r["exit_code"] == 0 and r["stdout"] == "hello\n", str(rep)
    rep.check_clean()
    assert audit_lines(lab, "AUTH_OK scheme=Certificate")


def test_https_without_client_certificate_still_works(lab):
    """The listener asks for a certificate but does not require one:
    password clients on the same listener are unaffected."""
    p = lab.protocol(url=lab.https_url)
    shell = p.open_shell()
    p.close_shell(shell)


def test_wildcard_subject_and_email_name(lab_factory, tmp_path):
    lab = lab_factory(start=False)
    lab.start()
    ca = CA.of_lab(lab)
    lab.stop()
    lab.extra_config = ["[CertificateMapping anyone]",
                        "Subject = *@example.test",
                        f"Issuer = {ca.thumbprint().lower()}",
                        "UserName = lab"]
    lab.start()
    cert = ca.issue(tmp_path, "mail", email="Someone@Example.TEST")
    r = cert_session(lab, *cert).run_cmd("echo", ["wild"])
    assert r.std_out == b"wild\n"
    assert any("subject=someone@example.test" in ln
               for ln in audit_lines(lab, "AUTH_OK scheme=Certificate"))


def test_intermediate_ca_thumbprint_matches(lab_factory, tmp_path):
    """A client that sends its chain (leaf, intermediate) maps by the
    intermediate's thumbprint, as the issuing CA."""
    lab = lab_factory()
    root = CA.of_lab(lab)
    ikey = ec.generate_private_key(ec.SECP256R1())
    icert = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(
                 NameOID.COMMON_NAME, "intermediate")]))
             .issuer_name(root.cert.subject).public_key(ikey.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now() - HOUR)
             .not_valid_after(now() + 24 * HOUR)
             .add_extension(x509.BasicConstraints(True, 0), True)
             .sign(root.key, hashes.SHA256()))
    inter = CA(icert, ikey)
    cp, kp = inter.issue(tmp_path, "leaf", upn="deep@localhost")
    with open(cp, "ab") as f:
        f.write(icert.public_bytes(serialization.Encoding.PEM))
    lab.stop()
    lab.extra_config = ["[CertificateMapping deep]",
                        "Subject = deep@localhost",
                        f"Issuer = {inter.thumbprint()}", "UserName = lab"]
    lab.start()
    r = cert_session(lab, cp, kp).run_cmd("echo", ["chain"])
    assert r.std_out == b"chain\n"


def test_appended_foreign_ca_is_not_an_issuer(lab_factory, tmp_path):
    """A client may append any CA certificate to its chain; one that did
    not sign the leaf is ignored by verification and must not be taken as
    the issuer a mapping names either (here: mapped to the lab user)."""
    lab = lab_factory(start=False)
    lab.start()
    root = CA.of_lab(lab)
    lab.stop()
    foreign = CA.stranger()
    lab.extra_config = ["[CertificateMapping lab]", "Enabled = false",
                        "[CertificateMapping foreign]", "Subject = *",
                        f"Issuer = {foreign.thumbprint()}",
                        "UserName = lab"]
    lab.start()
    cp, kp = root.issue(tmp_path, "mallory", upn="mallory@localhost")
    with open(cp, "ab") as f:
        f.write(foreign.cert.public_bytes(serialization.Encoding.PEM))
    r = raw_create(lab, cert=(cp, kp))
    assert r.status_code == 401, r.text
    assert shells(lab) == []
    assert "no CertificateMapping" in audit_lines(
        lab, "AUTH_FAIL scheme=Certificate")[-1]
    # The same certificate issued by the mapped CA is accepted.
    lab.stop()
    lab.extra_config[-2] = f"Issuer = {root.thumbprint()}"
    lab.start()
    assert cert_session(lab, cp, kp).run_cmd("echo", ["ok"]).std_out == \
        b"ok\n"


# -- refused --------------------------------------------------------------

REFUSALS = {
    "no-mapping": dict(upn="other@localhost"),
    "expired": dict(upn="lab@localhost",
                    not_before=now() - 48 * HOUR,
                    not_after=now() - 24 * HOUR),
    "server-eku": dict(upn="lab@localhost", eku="server"),
    "no-upn": dict(dns=["lab.example"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS) + ["stranger-ca",
                                                     "no-certificate"])
def test_refused_certificates(lab, tmp_path, case):
    if case == "no-certificate":
        cert = None
    elif case == "stranger-ca":
        # Same subject and CA name as the lab's, other key.
        cert = CA.stranger().issue(tmp_path, "lab", upn="lab@localhost")
    else:
        cert = CA.of_lab(lab).issue(tmp_path, case, **REFUSALS[case])
    r = raw_create(lab, cert=cert)
    assert r.status_code == 401, r.text
    assert r.content == b""
    assert shells(lab) == []
    reasons = audit_lines(lab, "AUTH_FAIL scheme=Certificate")
    assert reasons, lab.log()
    expect = {"no-mapping": "no CertificateMapping",
              "expired": "expired",
              "server-eku": "not for client authentication",
              "no-upn": "no UPN",
              "stranger-ca": "not issued by a ClientCAFile",
              "no-certificate": "no client certificate"}[case]
    assert expect in reasons[-1], reasons


def test_refused_by_configuration(lab_factory, tmp_path):
    """Certificate=false, a disabled mapping, a mapping to an account
    winrmd does not know, and the mutual header over plain HTTP."""
    lab = lab_factory(args=["-o", "Service/Auth.Certificate=false"])
    assert raw_create(lab, cert=(lab.client_cert, lab.client_key)
                      ).status_code == 401
    assert "scheme disabled" in audit_lines(lab, "AUTH_FAIL")[-1]
    lab.stop()

    lab.args = []
    ca = CA.of_lab(lab)
    lab.extra_config = ["[CertificateMapping lab]", "Enabled = false",
                        "[CertificateMapping ghost]",
                        "Subject = ghost@localhost",
                        f"Issuer = {ca.thumbprint()}",
                        "UserName = ghost"]
    lab.start()
    assert raw_create(lab, cert=(lab.client_cert, lab.client_key)
                      ).status_code == 401
    assert "no CertificateMapping" in audit_lines(lab, "AUTH_FAIL")[-1]
    ghost = ca.issue(tmp_path, "ghost", upn="ghost@localhost")
    assert raw_create(lab, cert=ghost).status_code == 401
    assert "not a winrmd user" in audit_lines(lab, "AUTH_FAIL")[-1]
    # On HTTP there is no certificate to check: the scheme is refused.
    r = raw_create(lab, url=lab.http_url)
    assert r.status_code == 401
    assert shells(lab) == []


def write_crl(ca, path, revoked_pems=()):
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(ca.cert.subject).last_update(now() - HOUR)
         .next_update(now() + 24 * HOUR))
    for pem in revoked_pems:
        with open(pem, "rb") as f:
            serial = x509.load_pem_x509_certificate(f.read()).serial_number
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now() - HOUR).build())
    path.write_bytes(b.sign(ca.key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM))
    return str(path)


def test_revoked_client_certificate(lab_factory, tmp_path):
    """ClientCRLFile: a certificate its CRL lists is refused, the others
    are not; a CRL no ClientCAFile authority signed is a start-up
    error."""
    lab = lab_factory(start=False)
    lab.start()
    ca = CA.of_lab(lab)
    lab.stop()
    bad = ca.issue(tmp_path, "gone", upn="lab@localhost")
    good = ca.issue(tmp_path, "kept", upn="lab@localhost")
    crl = write_crl(ca, tmp_path / "client.crl", [bad[0]])
    lab.extra_config = ["[Listener HTTPS]", f"ClientCRLFile = {crl}"]
    lab.start()
    r = raw_create(lab, cert=bad)
    assert r.status_code == 401
    assert "client certificate revoked" in audit_lines(
        lab, "AUTH_FAIL scheme=Certificate")[-1]
    assert cert_session(lab, *good).run_cmd("echo", ["kept"]).std_out == \
        b"kept\n"
    assert shells(lab) == []
    lab.stop()
    write_crl(CA.stranger(), tmp_path / "client.crl", [bad[0]])
    with pytest.raises(AssertionError, match="no usable CRL"):
        lab.start(timeout=10)
    lab.proc = None


def test_bad_mapping_is_a_configuration_error(lab_factory):
    lab = lab_factory(config_lines=["[CertificateMapping bad]",
                                    "Subject = x@localhost",
                                    "Issuer = not-a-thumbprint",
                                    "UserName = lab"], start=False)
    with pytest.raises(AssertionError, match="Issuer must be a SHA-1"):
        lab.start(timeout=10)
    lab.proc = None


# -- the listener's TLS -----------------------------------------------------

def tls_version(lab, maxv=None, minv=None):
    host, port = lab.https_url.split("/")[2].split(":")
    ctx = ssl.create_default_context(cafile=lab.ca_file)
    # Let the client offer old versions, so that refusing them is the
    # server's doing.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if maxv:
        ctx.maximum_version = maxv
    if minv:
        ctx.minimum_version = minv
    with socket.create_connection((host, int(port)), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.version()


def test_tls_priorities(lab_factory):
    """TLS 1.2 and 1.3 by default; TlsPriorities changes it."""
    lab = lab_factory(config_lines=["[Listener HTTPS]", "TlsPriorities = "
                                    "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0"])
    with pytest.warns(DeprecationWarning):
        assert tls_version(lab, maxv=ssl.TLSVersion.TLSv1_1,
                           minv=ssl.TLSVersion.TLSv1) == "TLSv1.1"
    lab.stop()
    lab.extra_config = []
    lab.start()
    assert tls_version(lab) == "TLSv1.3"
    assert tls_version(lab, maxv=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError), pytest.warns(DeprecationWarning):
        tls_version(lab, maxv=ssl.TLSVersion.TLSv1_1,
                    minv=ssl.TLSVersion.TLSv1)
    lab.stop()
    lab.extra_config = ["[Listener HTTPS]",
                        "TlsPriorities = NORMAL:-VERS-ALL:+VERS-TLS1.3"]
    lab.start()
    with pytest.raises(ssl.SSLError):
        tls_version(lab, maxv=ssl.TLSVersion.TLSv1_2)
    assert tls_version(lab) == "TLSv1.3"


def server_cert_der(lab):
    host, port = lab.https_url.split("/")[2].split(":")
    ctx = ssl.create_default_context(cafile=lab.ca_file)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def wait_log(lab, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in lab.log():
            return True
        time.sleep(0.05)
    return False


def test_certificate_reload_on_sighup_keeps_shells(lab, tmp_path):
    p = lab.protocol(url=lab.https_url)
    shell = p.open_shell()
    before = server_cert_der(lab)
    cert_path = os.path.join(os.path.dirname(lab.ca_file), "cert.pem")
    key_path = os.path.join(os.path.dirname(lab.ca_file), "key.pem")
    cp, kp = CA.of_lab(lab).issue(tmp_path, "renewed", eku="server",
                                  dns=["localhost"], ips=["127.0.0.1"])
    os.replace(cp, cert_path)
    os.replace(kp, key_path)
    os.kill(lab.proc.pid, signal.SIGHUP)
    assert wait_log(lab, "listener HTTPS: certificate reloaded"), lab.log()
    after = server_cert_der(lab)
    assert after != before
    with open(cert_path, "rb") as f:
        assert after == x509.load_pem_x509_certificate(f.read()).public_bytes(
            serialization.Encoding.DER)
    # The shell made before the reload still works, on a new connection.
    p2 = lab.protocol(url=lab.https_url)
    cid = p2.run_command(shell, "echo", ["still here"])
    out, _, code = p2.get_command_output(shell, cid)
    assert (out, code) == (b"still here\n", 0)
    p2.close_shell(shell)

    # A broken file keeps the certificate the listener has.
    with open(cert_path, "w") as f:
        f.write("not a certificate\n")
    os.kill(lab.proc.pid, signal.SIGHUP)
    assert wait_log(lab, "keeping the certificate it has"), lab.log()
    assert server_cert_der(lab) == after
