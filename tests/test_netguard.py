"""The suite's network guard: every route out is refused with its own error, not by luck.

Each check swaps the real socket function the guard wraps for a recorder, so a broken
guard fails the test (the recorder is reached, or no NetworkBlockedError is raised)
without a packet ever being sent.
"""
import errno
import os
import socket
import subprocess
import sys

import _socket
import pytest

import netguard
from netguard import NetworkBlockedError

OUTSIDE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never routed; nothing is sent to it anyway


@pytest.fixture
def recorder(monkeypatch):
    reached = []
    for name in list(netguard._REAL):
        monkeypatch.setitem(netguard._REAL, name, lambda *a, _n=name, **k: reached.append(_n))
    return reached


def test_guard_is_installed_and_wraps_every_route():
    assert netguard.installed()
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        assert getattr(socket.socket, name) is not getattr(_socket.socket, name), name
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        assert getattr(socket, name) is not netguard._REAL[name], name
        assert getattr(_socket, name) is getattr(socket, name), name


ROUTES = {
    "tcp connect": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect((OUTSIDE, 80)),
    "tcp connect_ex": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect_ex((OUTSIDE, 80)),
    "udp connect": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect((OUTSIDE, 53)),
    "udp sendto": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (OUTSIDE, 53)),
    "udp sendto flags": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", 0, (OUTSIDE, 53)),
    "udp sendmsg": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b"x"], [], 0, (OUTSIDE, 53)),
    "ipv6 connect": lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).connect(("2001:db8::1", 53)),
    "getaddrinfo": lambda: socket.getaddrinfo("example.org", 443),
    "gethostbyname": lambda: socket.gethostbyname("example.org"),
    "gethostbyname_ex": lambda: socket.gethostbyname_ex("example.org"),
    "gethostbyaddr": lambda: socket.gethostbyaddr(OUTSIDE),
    "getnameinfo": lambda: socket.getnameinfo((OUTSIDE, 80), 0),
    "_socket.gethostbyname": lambda: _socket.gethostbyname("example.org"),
    "create_connection": lambda: socket.create_connection(("example.org", 80), timeout=1),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_route_out_is_refused_by_the_guard(route, recorder):
    with pytest.raises(NetworkBlockedError, match="network access blocked"):
        ROUTES[route]()
    assert recorder == [], f"{route} reached the real socket function"


def test_loopback_and_local_names_pass_through(recorder):
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 9))
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", ("::1", 9))
    socket.getaddrinfo("localhost", 80)
    assert recorder == ["connect", "sendto", "getaddrinfo"]


def test_python_children_load_the_guard():
    code = "import socket, netguard; print(netguard.installed(), socket.gethostbyname is not netguard._REAL['gethostbyname'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_isolated_children_have_no_route_out():
    """``python -I`` skips sitecustomize: only the network namespace (tools/offline.sh) stops it."""
    if os.environ.get("MMCOURSE_NETNS") != "1":
        pytest.skip("not in a network namespace (run through tools/offline.sh where unshare -n is allowed): "
                    "python -I / -S children and other programs are not guarded here")
    code = ("import socket, errno\n"
            "print(sorted(n for _, n in socket.if_nameindex()))\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"  # a UDP connect sends nothing
            f"try:\n    s.connect(({OUTSIDE!r}, 9)); print('route')\nexcept OSError as e:\n    print(e.errno)\n")
    for flag in ("-I", "-S"):
        out = subprocess.run([sys.executable, flag, "-c", code], capture_output=True, text=True, timeout=60)
        lines = out.stdout.split("\n")
        assert lines[0] == "['lo']", (flag, out.stdout, out.stderr[-2000:])
        assert lines[1] == str(errno.ENETUNREACH), (flag, out.stdout)
