"""A throwaway MIT Kerberos realm on loopback for the tests.

KDC(tmpdir) writes krb5.conf and kdc.conf, creates the database, adds the
service principals winrmd accepts (HTTP/, host/ and WSMAN/ for localhost
and 127.0.0.1) into a keytab, and starts krb5kdc on a free loopback port.
Everything lives in the temporary directory; the machine's own Kerberos
configuration is never touched.
"""
import os
import shutil
import socket
import subprocess
import time

REALM = "WINRMD.TEST"


def tools_present():
    return all(shutil.which(t) or os.path.exists("/usr/sbin/" + t)
               for t in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sbin(name):
    return shutil.which(name) or "/usr/sbin/" + name


class KDC:
    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.keytab = os.path.join(self.dir, "service.keytab")
        self.env = dict(os.environ)
        self.env.update(KRB5_CONFIG=self.krb5_conf,
                        KRB5_KDC_PROFILE=os.path.join(self.dir, "kdc.conf"),
                        KRB5CCNAME="FILE:" + os.path.join(self.dir, "ccache"))
        self.proc = None

    def start(self):
        with open(self.krb5_conf, "w") as f:
            f.write(f"""[libdefaults]
 default_realm = {REALM}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
[realms]
 {REALM} = {{
  kdc = 127.0.0.1:{self.port}
 }}
[domain_realm]
 localhost = {REALM}
 127.0.0.1 = {REALM}
""")
        with open(self.env["KRB5_KDC_PROFILE"], "w") as f:
            f.write(f"""[kdcdefaults]
 kdc_ports = {self.port}
 kdc_tcp_ports = {self.port}
[realms]
 {REALM} = {{
  database_name = {self.dir}/principal
  key_stash_file = {self.dir}/stash
  acl_file = {self.dir}/kadm5.acl
  max_life = 1h
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}
""")
        self.run(sbin("kdb5_util"), "create", "-s", "-r", REALM, "-P",
                 "master-key-for-tests")
        for host in ("localhost", "127.0.0.1"):
            for svc in ("HTTP", "host", "WSMAN"):
                self.kadmin(f"addprinc -randkey {svc}/{host}@{REALM}")
                self.kadmin(f"ktadd -k {self.keytab} {svc}/{host}@{REALM}")
        self.proc = subprocess.Popen([sbin("krb5kdc"), "-n"], env=self.env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("krb5kdc did not start")

    def run(self, *args, input=None):
        r = subprocess.run(list(args), env=self.env, input=input,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {r.stdout}{r.stderr}")
        return r

    def kadmin(self, query):
        return self.run(sbin("kadmin.local"), "-r", REALM, "-q", query)

    def add_user(self, name, password):
        self.kadmin(f"addprinc -pw {password} {name}@{REALM}")

    def kinit(self, name, password, ccache=None, lifetime=None):
        env = dict(self.env)
        if ccache:
            env["KRB5CCNAME"] = ccache
        life = ["-l", lifetime] if lifetime else []
        r = subprocess.run(["kinit"] + life + [f"{name}@{REALM}"], env=env,
                           input=password + "\n", capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("kinit failed: " + r.stderr)

    def strict_clock_env(self):
        """An environment whose krb5.conf tolerates one second of clock
        skew instead of five minutes, for a service that must notice an
        expired ticket at once."""
        path = os.path.join(self.dir, "krb5-strict.conf")
        with open(self.krb5_conf) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("[libdefaults]\n",
                                 "[libdefaults]\n clockskew = 1\n", 1))
        env = dict(self.env)
        env["KRB5_CONFIG"] = path
        return env

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
