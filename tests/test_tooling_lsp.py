"""`dynv lsp`: the analysis behind it, and the server driven over JSON-RPC in a subprocess."""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("pygls")

from dynvision_dsl.tooling import lsp  # noqa: E402

SPEC = """model Two
param tau = 5 ms
param w = 0.5
time { dt = 1 ms  steps = 10 }
input image [1, 16, 16]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V1 [4] : leaky(tau=tau)
area V2 [8] : leaky(tau=2 * tau)
image -> V1 : conv(3)
V1 -> V2 : conv(3), delay 2 ms
V2 -> V1 : adapt, delay 3 ms
readout V2 : avgpool | linear(2)
"""
URI = "file:///tmp/two.dyn"
TIMEOUT = 20.0


def position(text: str, needle: str, nth: int = 0) -> dict:
    """The 0-based LSP position of the nth occurrence of `needle` in `text`."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at)
    return {"line": line, "character": at - (text.rfind("\n", 0, at) + 1)}


# ------------------------------------------------------------ the analysis
def test_hover_shows_an_areas_shape_first_present_step_and_equations():
    a = lsp.analyse(SPEC, "two.dyn")
    text = lsp.hover(a, "V2")
    assert "`[8, 16, 16]`" in text and "present from step 2 (2 ms)" in text
    assert "dynamics: leaky" in text and "tau * dr/dt = -r + input" in text


def test_hover_shows_a_params_value_and_dimension():
    a = lsp.analyse(SPEC, "two.dyn")
    assert lsp.hover(a, "tau") == "**param** `tau` = `5 ms` (time, ms)"
    assert lsp.hover(a, "w") == "**param** `w` = `0.5` (dimensionless)"
    assert lsp.hover(a, "conv").startswith("**operator** `conv(k, stride=1")


def test_inside_a_template_a_name_is_its_parameter():
    a = lsp.analyse(SPEC, "two.dyn")
    assert lsp.hover(a, "tau", 7) == ("**template parameter** `tau` of `leaky`\n\n"
                                      "given by V1: `tau`, V2: `2 * tau`")
    assert [(s.line, s.col) for s in lsp.definitions(a, "tau", 7)] == [(6, 16)]
    assert [(s.line, s.col) for s in lsp.definitions(a, "tau", 10)] == [(2, 7)]
    assert lsp.hover(a, "tau", 10).startswith("**param** `tau`")


def test_definitions_cover_both_branches_of_an_if():
    source = SPEC.replace("area V1 [4] : leaky(tau=tau)",
                          'param fb = "on"\nif fb == "on" { area V1 [4] : leaky(tau=tau) } else { area V1 [4] : leaky(tau=tau) }')
    a = lsp.analyse(source, "two.dyn")
    line = source.splitlines()[10]
    first = line.index("V1")
    assert [(s.line, s.col) for s in lsp.definitions(a, "V1")] == [(11, first + 1), (11, line.index("V1", first + 1) + 1)]
    assert [(s.line, s.col) for s in lsp.definitions(a, "leaky")] == [(6, 10)]


def test_every_half_typed_version_of_a_spec_gets_diagnostics_not_a_crash():
    source = (ROOT / "examples" / "05_variant.dyn").read_text()
    for i in range(0, len(source), 11):
        for text in (source[:i], source[:i] + source[i + 4:]):
            a = lsp.analyse(text, "x.dyn")
            assert a.diagnostics or a.model is not None


def test_a_compiler_crash_becomes_one_diagnostic(monkeypatch):
    def crash(module, params=None):
        raise KeyError("boom")

    monkeypatch.setattr(lsp, "check_module", crash)
    (d,) = lsp.analyse_or_report(SPEC, "two.dyn").diagnostics
    assert d.code == "internal" and "KeyError" in d.message


def test_word_at_finds_the_name_under_the_cursor():
    assert lsp.word_at("V1 -> V2 : conv(3)", 0, 7) == "V2"
    assert lsp.word_at("V1 -> V2 : conv(3)", 0, 4) is None
    assert lsp.word_at("x", 5, 0) is None


def test_the_analysis_does_not_import_torch():
    code = "import sys; import dynvision_dsl.tooling.lsp as l, dynvision_dsl.tooling.fmt; " \
           "l.analyse(open(sys.argv[1]).read()); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "dyrcnn_x4.dyn")], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------ over JSON-RPC, stdio
class Client:
    """A minimal LSP client: Content-Length framing, a reader thread, timeouts on every wait."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "dynvision_dsl.cli", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.inbox: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            header = {}
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode().partition(":")
                header[key.strip().lower()] = value.strip()
            self.inbox.put(json.loads(out.read(int(header["content-length"]))))

    def send(self, method: str, params, request: bool = True):
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return message.get("id")

    def wait(self, match) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer from the language server in time")
            message = self.inbox.get(timeout=left)
            if match(message):
                return message

    def request(self, method: str, params) -> dict:
        i = self.send(method, params)
        reply = self.wait(lambda m: m.get("id") == i and "method" not in m)
        assert "error" not in reply, reply
        return reply["result"]

    def diagnostics(self) -> list:
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")["params"]["diagnostics"]

    def close(self) -> int:
        try:
            self.request("shutdown", None)
            self.send("exit", None, request=False)
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def client():
    c = Client()
    result = c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    caps = result["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"] and "completionProvider" in caps
    c.send("initialized", {}, request=False)
    c.send("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "dyn", "version": 1, "text": SPEC}},
           request=False)
    assert c.diagnostics() == []
    yield c
    assert c.close() == 0


def test_lsp_publishes_diagnostics_with_exact_ranges_and_codes_as_you_type(client):
    bad = SPEC.replace("delay 2 ms", "delay 2.5 ms")
    client.send("textDocument/didChange", {"textDocument": {"uri": URI, "version": 2},
                                           "contentChanges": [{"text": bad}]}, request=False)
    (d,) = client.diagnostics()
    start = position(bad, "2.5 ms")
    assert d["range"] == {"start": start, "end": {"line": start["line"], "character": start["character"] + 6}}
    assert d["severity"] == 1 and d["source"] == "dynv" and "not a multiple of dt" in d["message"]
    syntax = SPEC.replace("V1 -> V2 : conv(3)", "V1 -> V2 : conv(3")
    client.send("textDocument/didChange", {"textDocument": {"uri": URI, "version": 3},
                                           "contentChanges": [{"text": syntax}]}, request=False)
    (d,) = client.diagnostics()
    assert d["code"] == "E001" and d["range"]["start"]["line"] == 12
    # names stay known while the text does not parse
    hover = client.request("textDocument/hover", {"textDocument": {"uri": URI}, "position": position(syntax, "V2", 1)})
    assert "`[8, 16, 16]`" in hover["contents"]["value"]
    client.send("textDocument/didChange", {"textDocument": {"uri": URI, "version": 4},
                                           "contentChanges": [{"text": SPEC}]}, request=False)
    assert client.diagnostics() == []


def test_lsp_hover_definition_and_completion(client):
    doc = {"uri": URI}
    hover = client.request("textDocument/hover", {"textDocument": doc, "position": position(SPEC, "tau", 3)})
    assert hover["contents"]["kind"] == "markdown" and "`5 ms` (time, ms)" in hover["contents"]["value"]
    assert client.request("textDocument/hover", {"textDocument": doc, "position": {"line": 0, "character": 1}}) is None
    locations = client.request("textDocument/definition", {"textDocument": doc, "position": position(SPEC, "leaky", 1)})
    assert locations == [{"uri": URI, "range": {"start": position(SPEC, "leaky"),
                                                "end": {"line": 5, "character": 14}}}]
    (v1,) = client.request("textDocument/definition", {"textDocument": doc, "position": position(SPEC, "V1 -> V2")})
    assert v1["range"]["start"] == position(SPEC, "V1")
    items = client.request("textDocument/completion", {"textDocument": doc, "position": {"line": 12, "character": 0}})
    labels = {i["label"]: i for i in items["items"]}
    assert {"V1", "V2", "tau", "w", "leaky", "image", "conv", "adapt", "relu", "area", "delay", "rk4"} <= set(labels)
    assert "k x k convolution" in labels["conv"]["detail"]


def test_dynv_lsp_without_pygls_says_how_to_install_it(tmp_path):
    (tmp_path / "pygls").mkdir()
    (tmp_path / "pygls" / "__init__.py").write_text("raise ModuleNotFoundError('no pygls', name='pygls')\n")
    out = subprocess.run([sys.executable, "-m", "dynvision_dsl.cli", "lsp"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1 and "pip install 'dynvision-dsl[lsp]'" in out.stderr and "Traceback" not in out.stderr
