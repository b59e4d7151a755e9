"""The client TLS context of outbound HTTPS calls, and what importing it costs the web tier."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import certifi

from bridge.runtime.tls import ssl_context

ROOT = Path(__file__).resolve().parents[2]


def test_ssl_context_is_built_once_per_ca_bundle():
    assert ssl_context(certifi.where()) is ssl_context(certifi.where())
    assert ssl_context() is ssl_context()


def test_ssl_context_verifies_servers_and_their_names():
    context = ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_web_app_does_not_load_microsoft_graphs_sdk():
    # the web tier reads federation metadata over TLS; Graph's SDK is the workers' (~8 MB each)
    script = (
        "import sys; from app import create_app; from bridge.runtime.config import Settings; "
        "create_app(Settings.from_env({'REDIS_URL': 'redis://127.0.0.1:1/0'})); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'kiota_http')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
