"""Refuse every outgoing connection that is not to this machine.

Used twice: by the root ``conftest.py`` for the test process, and through
``sitecustomize.py`` for every notebook kernel that nbval starts, so a test or a
notebook that reaches for the network fails loudly instead of passing by luck.
"""
import ipaddress
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_installed = False


class NetworkBlockedError(ConnectionRefusedError):
    """Raised when code under test opens a connection that leaves the machine."""


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(address) -> None:
    if isinstance(address, (tuple, list)) and address:
        if not _is_local(address[0]):
            raise NetworkBlockedError(f"network access blocked in tests: {address!r}")
    # str addresses are UNIX sockets: local by definition


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            raise NetworkBlockedError(f"network access blocked in tests: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
