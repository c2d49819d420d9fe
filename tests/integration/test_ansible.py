"""Ansible's winrm connection (Debian's ansible-core + pywinrm) against the
real daemon with pwsh installed: `raw`, and `ansible.windows.win_ping` from
Debian's ansible package.  Other ansible.windows modules are out of reach:
docs/compatibility.md names the Windows-only call each one stops at."""
import json
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("ansible") is None, reason="ansible-core is not installed")


def ansible(lab, tmp_path, *args, timeout=180):
    host, port = lab.http_url.split("//")[1].split("/")[0].split(":")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[winrmd]\n"
        f"lab ansible_host={host} ansible_port={port}\n"
        "[winrmd:vars]\n"
        "ansible_connection=winrm\n"
        "ansible_shell_type=powershell\n"
        "ansible_winrm_scheme=http\n"
        "ansible_winrm_transport=basic\n"
        "ansible_winrm_message_encryption=never\n"
        "ansible_winrm_server_cert_validation=ignore\n"
        f"ansible_user={lab.user}\n"
        f"ansible_password={lab.password}\n")
    env = dict(os.environ)
    env.update(ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"))
    r = subprocess.run(["ansible", "-i", str(inventory), "lab"] + list(args),
                       capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=tmp_path)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"ansible printed no JSON (rc {r.returncode}):\n"
                    f"{r.stdout}\n{r.stderr}")
    return r.returncode, out["plays"][0]["tasks"][0]["hosts"]["lab"]


def test_raw_linux_command(lab, tmp_path):
    rc, res = ansible(lab, tmp_path, "-m", "raw", "-a", "uname -s")
    assert rc == 0, res
    assert res["stdout"].strip().endswith("Linux") or \
        "Linux" in res["stdout"], res


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="needs pwsh")
def test_raw_powershell_statement(lab, tmp_path):
    # With pwsh installed, Ansible's PowerShell command lines run pwsh.
    rc, res = ansible(lab, tmp_path, "-m", "raw", "-a",
                      "Write-Output ('pw' + 'sh')")
    assert rc == 0, res
    assert res["stdout_lines"] == ["pwsh"], res


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="needs pwsh")
def test_win_ping(lab, tmp_path):
    collection = "/usr/lib/python3/dist-packages/ansible_collections/" \
                 "ansible/windows/plugins/modules/win_ping.ps1"
    if not os.path.exists(collection):
        pytest.skip("the ansible.windows collection (Debian package "
                    "ansible) is not installed")
    rc, res = ansible(lab, tmp_path, "-m", "ansible.windows.win_ping")
    assert rc == 0, res
    assert res.get("ping") == "pong", res
    rc, res = ansible(lab, tmp_path, "-m", "ansible.windows.win_ping",
                      "-a", "data=winrmd")
    assert res.get("ping") == "winrmd", res
