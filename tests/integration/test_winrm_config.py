"""winrm/config over WS-Management, as `winrm get winrm/config` and
`winrm set winrm/config @{...}` use it: Get of each resource, the
listeners (Get by selectors, Enumerate), Put of what can change while the
service runs (kept across restarts), and the refusals."""
import re

from wsman_raw import Wire, envelope

CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
PUT = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
CFG = 'xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config"'


def get(lab, res="", selectors=None):
    w = Wire(lab)
    env, _ = envelope("Get", resource_uri=CONFIG + res, to=w.url,
                      selectors=selectors)
    return w.soap(env)


def put(lab, res, body):
    w = Wire(lab)
    env, _ = envelope(PUT, resource_uri=CONFIG + res, to=w.url, body=body)
    return w.soap(env)


def value(text, element):
    m = re.search(r"<cfg:%s>([^<]*)</cfg:%s>" % (element, element), text)
    return m.group(1) if m else None


def test_get_resources(lab_factory):
    lab = lab_factory(args=["-o", "Service.MaxEnvelopeSizekb=512",
                            "-o", "Winrs.MaxShellsPerUser=7"])
    r = get(lab)
    assert r.status == 200, r
    assert value(r.text, "MaxEnvelopeSizekb") == "512"
    assert value(r.text, "MaxShellsPerUser") == "7"
    assert value(r.text, "Basic") == "true"        # lab mode
    assert value(r.text, "HTTPS") == "5986"
    # The Ruby client reads this at start: it must be a number.
    assert value(r.text, "MaxTimeoutms").isdigit()
    for res, inner in [("/service", "AllowUnencrypted"),
                       ("/service/auth", "CbtHardeningLevel"),
                       ("/winrs", "IdleTimeout")]:
        r = get(lab, res)
        assert r.status == 200 and value(r.text, inner) is not None, res
    r = get(lab, "/nothing")
    assert r.status == 500 and "DestinationUnreachable" in r.text


def test_listeners(lab):
    r = get(lab, "/listener", {"Address": "127.0.0.1", "Transport": "HTTPS"})
    assert r.status == 200, r
    assert value(r.text, "Transport") == "HTTPS"
    assert value(r.text, "Port") == "0"    # the lab's --port 0
    r = get(lab, "/listener", {"Address": "10.9.9.9", "Transport": "HTTP"})
    assert r.status == 500 and "InvalidSelectors" in r.text
    w = Wire(lab)
    env, _ = envelope("Enumerate", resource_uri=CONFIG + "/listener",
                      to=w.url, body='<n:Enumerate xmlns:n="http://schemas.'
                      'xmlsoap.org/ws/2004/09/enumeration"><w:Optimize'
                      'Enumeration xmlns:w="http://schemas.dmtf.org/wbem/'
                      'wsman/1/wsman.xsd"/><w:MaxElements xmlns:w="http://schemas.dmtf.'
                      'org/wbem/wsman/1/wsman.xsd">10</w:MaxElements>'
                      '</n:Enumerate>')
    r = w.soap(env)
    assert r.status == 200, r
    # HTTP, HTTPS and the lab's certificate scenarios (docs/lab.md).
    assert sorted(re.findall(r"<cfg:Transport>(\w+)<", r.text)) == sorted(
        x["transport"].upper() for x in lab.info["listeners"])


def test_put_applies_and_persists(lab):
    r = put(lab, "", "<cfg:Config %s><cfg:MaxEnvelopeSizekb>600"
            "</cfg:MaxEnvelopeSizekb><cfg:Winrs><cfg:MaxShellsPerUser>3"
            "</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>" % CFG)
    assert r.status == 200, r
    assert "PutResponse" in r.text
    assert value(r.text, "MaxEnvelopeSizekb") == "600"
    # In effect now: a fourth shell is refused.
    p = lab.protocol()
    shells = [p.open_shell() for _ in range(3)]
    try:
        p.open_shell()
        raise AssertionError("a fourth shell was allowed")
    except Exception as e:
        assert "QuotaLimit" in str(e) or "2150859173" in str(e), e
    for s in shells:
        p.close_shell(s)
    assert "CONFIG_PUT user=lab setting=Winrs.MaxShellsPerUser value=3" in \
        lab.log()
    # Kept across a restart.
    lab.stop()
    lab.start()
    r = get(lab)
    assert value(r.text, "MaxEnvelopeSizekb") == "600"
    assert value(r.text, "MaxShellsPerUser") == "3"


def test_put_refusals(lab):
    # Read at start only: not changeable now.
    r = put(lab, "/service", "<cfg:Service %s><cfg:MaxConnections>5"
            "</cfg:MaxConnections></cfg:Service>" % CFG)
    assert r.status == 500 and "AccessDenied" in r.text, r
    # A bad value is refused and changes nothing.
    r = put(lab, "/service/auth", "<cfg:Auth %s><cfg:CbtHardeningLevel>"
            "Sometimes</cfg:CbtHardeningLevel></cfg:Auth>" % CFG)
    assert r.status == 500 and "InvalidParameter" in r.text, r
    assert value(get(lab, "/service/auth").text,
                 "CbtHardeningLevel") == "Relaxed"
    # Unknown settings and the listener resource.
    r = put(lab, "/winrs", "<cfg:Winrs %s><cfg:NoSuchThing>1"
            "</cfg:NoSuchThing></cfg:Winrs>" % CFG)
    assert r.status == 500 and "InvalidParameter" in r.text
    r = put(lab, "/listener", "<cfg:Listener %s/>" % CFG)
    assert r.status == 500 and "ActionNotSupported" in r.text


def plugin_docs(text):
    import xml.etree.ElementTree as ET
    ns = "{%s/PluginConfiguration}" % CONFIG
    root = ET.fromstring(text)
    return {p.get("Name"): p for p in root.iter(ns + "PlugInConfiguration")}


def test_plugins(lab_factory):
    """winrm/config/plugin: each session configuration as Windows'
    PlugInConfiguration document, by Name and enumerated."""
    lab = lab_factory(config_lines=[
        "[SessionConfiguration Ops]", "Plugin = powershell",
        "ResourceURI = http://example.invalid/ops", "MaxShellsPerUser = 3",
        "UseSharedProcess = true", "RunAsUser = nobody", "Enabled = false"])
    ns = "{%s/PluginConfiguration}" % CONFIG
    r = get(lab, "/plugin", {"Name": "microsoft.powershell"})
    assert r.status == 200, r
    p = plugin_docs(r.text)["Microsoft.PowerShell"]
    assert p.get("Filename").endswith("/powershell.so")
    assert (p.get("Enabled"), p.get("UseSharedProcess")) == ("true", "false")
    res = p.find(ns + "Resources/" + ns + "Resource")
    assert res.get("ResourceUri") == \
        "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
    assert res.find(ns + "Capability").get("Type") == "Shell"
    assert p.find(ns + "Quotas").get("IdleTimeoutms") == "7200000"
    r = get(lab, "/plugin", {"Name": "nothing-such"})
    assert r.status == 500 and "InvalidSelectors" in r.text

    w = Wire(lab)
    env, _ = envelope("Enumerate", resource_uri=CONFIG + "/plugin",
                      to=w.url, body='<n:Enumerate xmlns:n="http://schemas.'
                      'xmlsoap.org/ws/2004/09/enumeration"><w:Optimize'
                      'Enumeration xmlns:w="http://schemas.dmtf.org/wbem/'
                      'wsman/1/wsman.xsd"/><w:MaxElements xmlns:w="http://schemas.dmtf.'
                      'org/wbem/wsman/1/wsman.xsd">20</w:MaxElements>'
                      '</n:Enumerate>')
    r = w.soap(env)
    assert r.status == 200, r
    docs = plugin_docs(r.text)
    assert {"Microsoft.PowerShell", "PowerShell.7", "cmd", "Ops"} <= set(docs)
    ops = docs["Ops"]
    assert (ops.get("Enabled"), ops.get("UseSharedProcess"),
            ops.get("RunAsUser")) == ("false", "true", "nobody")
    assert ops.find(ns + "Quotas").get("MaxShellsPerUser") == "3"
    assert ops.find(ns + "Resources/" + ns + "Resource").get(
        "ResourceUri") == "http://example.invalid/ops"
