"""xpress compression as Windows PowerShell clients request it by default:
rsp:CompressionType on Create, every Send and Receive stream framed."""
import subprocess

import pytest

from conftest import binary, have_pwsh
from psrp import PowerShell, RunspacePool, WSManTransport
from psrp import xpress

pytestmark = pytest.mark.skipif(not have_pwsh(), reason="needs pwsh")


def lz77_frame(data):
    """Really compressed chunks, from the daemon's encoder (xpress-frame)."""
    r = subprocess.run([binary("tests/integration/xpress-frame")],
                       input=data, capture_output=True, timeout=30, check=True)
    return r.stdout


@pytest.mark.parametrize("encoder", ["stored", "lz77"])
def test_compressed_session(lab, encoder):
    t = WSManTransport(lab.http_url, lab.user, lab.password, auth="basic",
                       compression="xpress", operation_timeout=10)
    sent, received = [], []

    def compress(data):
        framed = xpress.frame_stored(data) if encoder == "stored" \
            else lz77_frame(data)
        sent.append((len(data), len(framed)))
        return framed

    def decompress(data):
        plain = xpress.unframe(data)
        received.append(len(plain))
        return plain

    t.compress, t.decompress = compress, decompress
    pool = RunspacePool(t).open(timeout=60)
    try:
        assert t.shell_info["CompressionMode"] == "XpressCompression"
        text = "abcdefgh" * 20000 + "é€xy"  # BMP only: .NET counts UTF-16
        ps = PowerShell(pool).add_script(
            "process { $_.Length; $_.Substring($_.Length - 4) }")
        out = ps.invoke(input=[text], timeout=60)
        assert out == [len(text), text[-4:]]
        assert sent and received
        if encoder == "lz77":
            # The input really went compressed.
            assert any(f < n / 4 for n, f in sent), sent
    finally:
        pool.close()


def test_uncompressed_session_reports_no_compression(lab):
    t = WSManTransport(lab.http_url, lab.user, lab.password, auth="basic")
    pool = RunspacePool(t).open(timeout=60)
    try:
        assert t.shell_info["CompressionMode"] == "NoCompression"
    finally:
        pool.close()
