"""Authentication and transport security against the real daemon:
Negotiate (NTLM and Kerberos), Kerberos, Basic, HTTP message encryption,
channel binding, and every refusal path.  Kerberos tests run a throwaway
MIT KDC on loopback (tests/integration/kdc.py)."""
import os
import re
import shutil
import subprocess

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

import kdc as kdcmod
from conftest import have_pwsh

CREATE = open(os.path.join(os.path.dirname(__file__), "..", "data",
                           "client-requests",
                           "pywinrm-0.3.0-basic-http-01.txt"),
              encoding="utf-8").read().split("\n\n", 1)[1].strip() + "\n"

NO_CLEARTEXT = ["-o", "Service.AllowUnencrypted=false"]


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    if not kdcmod.tools_present():
        pytest.skip("krb5-kdc is not installed")
    k = kdcmod.KDC(tmp_path_factory.mktemp("kdc")).start()
    k.add_user("lab", "Kerberos-Passw0rd")
    k.add_user("someone", "Someone-Passw0rd")
    k.kadmin(f"addprinc -randkey HTTP/wronghost@{kdcmod.REALM}")
    k.kinit("lab", "Kerberos-Passw0rd")
    os.environ.update(KRB5_CONFIG=k.krb5_conf, KRB5CCNAME=k.env["KRB5CCNAME"])
    yield k
    k.stop()


@pytest.fixture
def krb_lab(lab_factory, kdc):
    def make(*args):
        return lab_factory(args=["-o", "Service/Auth.Keytab=" + kdc.keytab]
                           + list(args), env=kdc.env)
    return make


def run_id(p):
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "echo", ["authenticated"])
        out, err, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        return out
    finally:
        p.close_shell(shell)


def shells(lab):
    return lab.winrmctl("shells").stdout.splitlines()[1:]


def gss_protocol(lab, url, **kw):
    from gssclient import GSSTransport
    p = Protocol(url, transport="plaintext", username="x", password="y")
    p.transport = GSSTransport(url, **kw)
    return p


# -- what happens without credentials ------------------------------------

def test_no_authorization_header_is_never_processed(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    r = requests.post(lab.http_url, data=CREATE, headers={
        "Content-Type": "application/soap+xml;charset=UTF-8"}, timeout=30)
    assert r.status_code == 401
    # One scheme per header line (go-ntlmssp reads lines one by one).
    raw = r.raw._original_response.msg.get_all("WWW-Authenticate")
    assert raw == ["Negotiate", "Kerberos"]
    assert r.content == b""
    assert shells(lab) == []


def test_basic_refused_on_http_without_allow_unencrypted(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    with pytest.raises(InvalidCredentialsError):
        run_id(lab.protocol())
    assert "AUTH_FAIL scheme=Basic" in lab.log()
    assert shells(lab) == []
    # The same credentials work over HTTPS.
    out = run_id(lab.protocol(url=lab.https_url))
    assert out == b"authenticated\n"


# -- NTLM through Negotiate (pywinrm with requests-ntlm) -------------------

def test_ntlm_sealed_over_http(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    p = lab.protocol(transport="ntlm")
    assert run_id(p) == b"authenticated\n"
    assert "AUTH_OK scheme=Negotiate mech=NTLM user=lab" in lab.log()


@pytest.mark.parametrize("user,password", [
    ("lab", "wrong password"), ("nobody", "whatever")])
def test_ntlm_bad_credentials(lab_factory, user, password):
    lab = lab_factory(args=NO_CLEARTEXT)
    p = lab.protocol(transport="ntlm", username=user, password=password)
    with pytest.raises(InvalidCredentialsError):
        run_id(p)
    assert "AUTH_FAIL scheme=" in lab.log()
    assert shells(lab) == []


def test_ntlm_unsealed_refused_without_allow_unencrypted(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    p = lab.protocol(transport="ntlm", message_encryption="never")
    with pytest.raises(InvalidCredentialsError):
        run_id(p)
    assert "unencrypted request refused" in lab.log()
    assert shells(lab) == []


def test_ntlm_over_https_unsealed(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    p = lab.protocol(url=lab.https_url, transport="ntlm")
    assert run_id(p) == b"authenticated\n"


@pytest.mark.skipif(not have_pwsh(), reason="needs pwsh")
def test_psrp_over_ntlm_sealed_http(lab_factory):
    from psrp import PowerShell, RunspacePool, WSManTransport
    lab = lab_factory(args=NO_CLEARTEXT)
    t = WSManTransport(lab.http_url, lab.user, lab.password, auth="ntlm",
                       operation_timeout=10)
    pool = RunspacePool(t).open(timeout=60)
    try:
        ps = PowerShell(pool).add_script("'sealed ' + (2 + 3)")
        assert ps.invoke(timeout=60) == ["sealed 5"]
    finally:
        pool.close()


# -- Kerberos ---------------------------------------------------------------

def test_kerberos_pywinrm_mutual_auth(krb_lab, kdc):
    # Debian's pywinrm 0.3.0 cannot seal Kerberos messages: it works where
    # clear text is allowed, and requires the mutual-authentication token
    # on the 200 (requests-kerberos, mutual_authentication=REQUIRED).
    lab = krb_lab()
    p = Protocol(lab.http_url, transport="kerberos",
                 username="lab@" + kdcmod.REALM)
    assert run_id(p) == b"authenticated\n"
    assert "mech=Kerberos user=lab principal=lab@WINRMD.TEST" in lab.log()


def test_kerberos_unsealed_refused_without_allow_unencrypted(krb_lab, kdc):
    lab = krb_lab(*NO_CLEARTEXT)
    p = Protocol(lab.http_url, transport="kerberos",
                 username="lab@" + kdcmod.REALM)
    with pytest.raises(InvalidCredentialsError):
        run_id(p)
    assert shells(lab) == []


@pytest.mark.parametrize("mech,scheme", [
    ("krb5", "Negotiate"), ("spnego", "Negotiate"), ("krb5", "Kerberos")])
def test_kerberos_sealed_over_http(krb_lab, kdc, mech, scheme):
    lab = krb_lab(*NO_CLEARTEXT)
    p = gss_protocol(lab, lab.http_url, mech=mech, scheme=scheme)
    assert run_id(p) == b"authenticated\n"
    # The answers were sealed with the label of the request.
    assert p.transport.last_headers["Content-Type"].startswith(
        'multipart/encrypted;protocol="application/HTTP-%s-session-'
        'encrypted"' % ("Kerberos" if scheme == "Kerberos" else "SPNEGO"))


def test_ntlm_sealed_through_gssapi(lab_factory):
    lab = lab_factory(args=NO_CLEARTEXT)
    p = gss_protocol(lab, lab.http_url, mech="ntlm", user=lab.user,
                     password=lab.password)
    assert run_id(p) == b"authenticated\n"


def test_kerberos_wrong_service_principal(krb_lab, kdc):
    lab = krb_lab(*NO_CLEARTEXT)
    p = gss_protocol(lab, lab.http_url, mech="krb5", hostname="wronghost")
    with pytest.raises(InvalidCredentialsError):
        run_id(p)
    assert "AUTH_FAIL scheme=Negotiate" in lab.log()
    assert shells(lab) == []


def test_kerberos_principal_without_winrmd_user(lab_factory, kdc, tmp_path):
    """User mode: a principal the KDC vouches for is still refused when
    its account is not in winrmd's user table."""
    import base64

    import gssapi
    ccache = str(tmp_path / "someone-ccache")
    kdc.kinit("someone", "Someone-Passw0rd", ccache=ccache)
    creds = gssapi.Credentials(usage="initiate",
                               store={"ccache": "FILE:" + ccache})
    ctx = gssapi.SecurityContext(
        name=gssapi.Name("HTTP@localhost",
                         gssapi.NameType.hostbased_service),
        mech=gssapi.MechType.kerberos, creds=creds, usage="initiate")
    lab = lab_factory(args=["-o", "Service/Auth.Keytab=" + kdc.keytab],
                      env=kdc.env)
    r = requests.post(lab.http_url, data=b"", timeout=30, headers={
        "Authorization": "Kerberos " + base64.b64encode(
            ctx.step()).decode(),
        "Content-Type": "application/soap+xml;charset=UTF-8"})
    assert r.status_code == 401
    assert "reason=\"not a winrmd user\"" in lab.log()
    assert "AUTH_OK" not in lab.log()


def test_kerberos_expired_ticket(lab_factory, kdc, tmp_path):
    """An AP-REQ made while the ticket was valid and presented after it
    expired is refused by the service (clock skew allowance: 1 s)."""
    import base64
    import time

    import gssapi
    ccache = str(tmp_path / "short-ccache")
    kdc.kinit("lab", "Kerberos-Passw0rd", ccache=ccache, lifetime="3s")
    creds = gssapi.Credentials(usage="initiate",
                               store={"ccache": "FILE:" + ccache})
    ctx = gssapi.SecurityContext(
        name=gssapi.Name("HTTP@localhost",
                         gssapi.NameType.hostbased_service),
        mech=gssapi.MechType.kerberos, creds=creds, usage="initiate")
    token = base64.b64encode(ctx.step()).decode()
    lab = lab_factory(args=["-o", "Service/Auth.Keytab=" + kdc.keytab],
                      env=kdc.strict_clock_env())
    time.sleep(6)
    r = requests.post(lab.http_url, data=b"", timeout=30, headers={
        "Authorization": "Kerberos " + token,
        "Content-Type": "application/soap+xml;charset=UTF-8"})
    assert r.status_code == 401
    fails = [ln for ln in lab.log().splitlines() if "AUTH_FAIL" in ln]
    assert fails and "xpired" in fails[-1], lab.log()
    assert "AUTH_OK" not in lab.log()


# -- channel binding on HTTPS ---------------------------------------------

@pytest.mark.parametrize("level,send,wrong,ok", [
    ("Strict", True, False, True),
    ("Strict", False, False, False),
    ("Strict", True, True, False),
    ("Relaxed", False, False, True),
    ("Relaxed", True, True, False),
    ("None", True, True, True),
])
@pytest.mark.parametrize("mech", ["krb5", "ntlm"])
def test_channel_binding(krb_lab, kdc, mech, level, send, wrong, ok):
    lab = krb_lab("-o", "Service/Auth.CbtHardeningLevel=" + level)
    kw = dict(mech=mech, seal=False, ca_file=lab.ca_file, send_cbt=send,
              wrong_cbt=wrong)
    if mech == "ntlm":
        kw.update(user=lab.user, password=lab.password)
    p = gss_protocol(lab, lab.https_url, **kw)
    if ok:
        assert run_id(p) == b"authenticated\n"
    else:
        with pytest.raises(InvalidCredentialsError):
            run_id(p)
        assert shells(lab) == []


# -- Basic: a burst of first logins ----------------------------------------

def test_a_burst_of_basic_logins_hashes_the_password_once(lab_factory):
    """Requests that arrive with the same user and password while the
    first verification of them is still running (the password hash costs
    milliseconds) wait for its answer instead of hashing again; every one
    of them is answered and audited."""
    import threading
    from wsman_raw import NS, SHELL_URI, Wire, envelope
    lab = lab_factory(args=["-o", "Service.LogLevel=DEBUG"])
    wire = Wire(lab)
    body, _ = envelope("Enumerate", resource_uri=SHELL_URI, to=wire.url,
                       body='<n:Enumerate xmlns:n="%s"/>' % NS["n"])
    n = 12
    barrier = threading.Barrier(n)
    status = [None] * n

    def one(i):
        conn = wire.connection()
        conn.connect()
        barrier.wait()
        try:
            status[i] = wire.request(body, conn=conn).status
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert status == [200] * n
    log = lab.log()
    hashed = log.count("Basic: verifying the password of %s" % lab.user)
    joined = log.count("Basic: %s joins the verification under way"
                       % lab.user)
    assert hashed + joined <= n and hashed >= 1
    assert joined >= 1 and hashed < n, \
        "%d of %d simultaneous first logins hashed the password" % (hashed, n)
    assert log.count("AUTH_OK scheme=Basic user=%s" % lab.user) >= n - \
        (n - hashed - joined)
