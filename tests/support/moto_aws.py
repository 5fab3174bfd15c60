"""A real local AWS endpoint (moto in server mode) for Secrets Manager and KMS.

:func:`moto_endpoint` runs moto's own server in a thread of the test process, on a free loopback
port; clients reach it over HTTP exactly like AWS, pointed there with ``AWS_ENDPOINT_URL``.
:func:`moto_endpoint_enforcing_auth` runs ``moto_server`` as a separate process with IAM
authentication on (``INITIAL_NO_AUTH_ACTION_COUNT=0``): every request signed with credentials it
does not know is refused with 403, like AWS refusing an unknown access key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["AWS_TEST_ENV", "moto_endpoint", "moto_endpoint_enforcing_auth"]

#: what every AWS client in these tests sees (and nothing from the machine's own AWS setup)
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION_NAME": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def moto_endpoint_enforcing_auth() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(script), "-H", "127.0.0.1", "-p", str(port)],
                               env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):   # until it listens (a bounded wait, not a measurement)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("moto_server exited") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
