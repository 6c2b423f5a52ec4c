"""`deepbeat studio` as a process, and the address options a command serving a page shares."""
import argparse
import http.client
import json
import signal
import subprocess
import sys
from urllib.parse import urlsplit

from deepbeat.cli import main
from deepbeat.web.commands import add_address_arguments, announce
from deepbeat.web.live import LIVE_PORT

from conftest import REPO_ROOT, TINY_MODEL_V2


def test_studio_serves_on_loopback_with_a_token_and_stops_on_ctrl_c():
    # Ctrl-C as a terminal delivers it: a test run started in the background (`pytest &`) hands its children
    # SIGINT ignored, and Python then keeps it ignored
    process = subprocess.Popen([sys.executable, "-m", "deepbeat", "studio", "--model", str(TINY_MODEL_V2), "--port",
                                "0"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        assert line.startswith("deepbeat studio: open http://127.0.0.1:"), line + process.stderr.read()
        url = urlsplit(line.split("open ", 1)[1].strip())
        token = url.query.removeprefix("token=")
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("GET", "/api/studio/setup")
        assert connection.getresponse().status == 403
        connection.request("GET", f"/api/studio/setup?token={token}")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["model"] == TINY_MODEL_V2.name
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.strip() == "deepbeat studio: stopped" and err == ""


def test_a_bad_port_or_model_is_one_line(capsys, tmp_path):
    assert main(["studio", "--port", "70000"]) == 2
    assert "argument --port: '70000' is not a port 0-65535" in capsys.readouterr().err
    assert main(["studio", "--model", str(tmp_path / "missing.onnx"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepbeat studio: error:") and "missing.onnx: no such file" in err and err.count("\n") == 1


def test_the_bridge_gets_prefixed_address_options_and_the_warning(capsys):
    parser = argparse.ArgumentParser()
    add_address_arguments(parser, LIVE_PORT, prefix="web-")
    args = parser.parse_args([])
    assert (args.web_host, args.web_port) == ("127.0.0.1", LIVE_PORT)
    args = parser.parse_args(["--web-host", "0.0.0.0", "--web-port", "9000"])

    class Served:
        url = "http://0.0.0.0:9000/?token=abc"

    announce("bridge", Served(), args.web_host)
    out, err = capsys.readouterr()
    assert out == "deepbeat bridge: open http://0.0.0.0:9000/?token=abc\n"
    assert err.startswith("deepbeat bridge: warning: serving on 0.0.0.0, beyond this machine")
    announce("bridge", Served(), "127.0.0.1")
    assert capsys.readouterr().err == ""
