"""``thrifty fake-provider`` as a separate process: start, serve one request, stop."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request


def test_fake_provider_process_serves_until_terminated() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "thrifty.cli.main", "fake-provider", "--wire", "openai",
         "--port", "0", "--api-key", "k-123", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the port is bound
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        body = json.dumps({"model": "gpt-4o",
                           "messages": [{"role": "user", "content": "echo: from a process"}]})
        request = urllib.request.Request(
            f"{match.group(0)}/v1/chat/completions", data=body.encode(),
            headers={"authorization": "Bearer k-123", "content-type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no env proxies
        with opener.open(request, timeout=5) as resp:
            reply = json.loads(resp.read())
        assert reply["choices"][0]["message"]["content"] == "from a process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fake_provider_refuses_a_public_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "thrifty.cli.main", "fake-provider", "--wire", "anthropic",
         "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=20,
    )
    assert done.returncode == 2 and "loopback" in done.stderr
