"""Refuse every network route out of this machine, from Python code under test.

Used twice: by the root ``conftest.py`` for the test process, and through
``sitecustomize.py`` for every Python process started under the suite (notebook kernels,
torchrun ranks), so a test or a notebook that reaches for the network fails loudly
instead of passing by luck.

Covered: TCP and UDP ``connect``/``connect_ex``, ``sendto``/``sendmsg`` (UDP without
connect), and name lookups (``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``,
``gethostbyaddr``, ``getnameinfo``), in both ``socket`` and ``_socket``. Loopback and UNIX
sockets stay allowed (Jupyter kernels, torch.distributed rendezvous).

Not covered from Python (nothing in-process can): ``python -I``/``-S`` children, which skip
``sitecustomize``, and non-Python programs. For those, ``tools/offline.sh`` runs the whole
suite in a network namespace with only the loopback interface (``unshare -n``) where the
platform allows; there nothing can leave, guard or not.
"""
import ipaddress
import socket

import _socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_REAL: dict = {}  # name -> the function the guard wraps (tests swap these for recorders)
_installed = False


class NetworkBlockedError(ConnectionRefusedError):
    """Raised when code under test opens a connection or sends a packet that leaves the machine."""


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_address(family, address, what: str) -> None:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # UNIX, netlink, ...: local by definition
    host = address[0] if isinstance(address, (tuple, list)) and address else address
    if not _is_local(host):
        raise NetworkBlockedError(f"network access blocked in tests: {what} to {address!r}")


def _check_host(host, what: str) -> None:
    if not _is_local(host):
        raise NetworkBlockedError(f"network access blocked in tests: {what} of {host!r}")


def installed() -> bool:
    return _installed


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    try:  # this machine's own name resolves locally (torch.distributed and Jupyter look it up)
        _LOCAL_NAMES.add(socket.gethostname().lower())
    except OSError:  # pragma: no cover
        pass
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        _REAL[name] = getattr(socket.socket, name)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        _REAL[name] = getattr(_socket, name)

    def connect(self, address):
        _check_address(self.family, address, "connect")
        return _REAL["connect"](self, address)

    def connect_ex(self, address):
        _check_address(self.family, address, "connect")
        return _REAL["connect_ex"](self, address)

    def sendto(self, data, *args):
        address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
        _check_address(self.family, address, "sendto")
        return _REAL["sendto"](self, data, *args)

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        if address is not None:
            _check_address(self.family, address, "sendmsg")
            return _REAL["sendmsg"](self, buffers, ancdata, flags, address)
        return _REAL["sendmsg"](self, buffers, ancdata, flags)

    def getaddrinfo(host, *args, **kwargs):
        _check_host(host, "lookup")
        return _REAL["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host):
        _check_host(host, "lookup")
        return _REAL["gethostbyname"](host)

    def gethostbyname_ex(host):
        _check_host(host, "lookup")
        return _REAL["gethostbyname_ex"](host)

    def gethostbyaddr(host):
        _check_host(host, "reverse lookup")
        return _REAL["gethostbyaddr"](host)

    def getnameinfo(sockaddr, flags):
        _check_host(sockaddr[0] if sockaddr else None, "reverse lookup")
        return _REAL["getnameinfo"](sockaddr, flags)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.socket.sendmsg = sendmsg
    for module in (socket, _socket):
        module.getaddrinfo = getaddrinfo
        module.gethostbyname = gethostbyname
        module.gethostbyname_ex = gethostbyname_ex
        module.gethostbyaddr = gethostbyaddr
        module.getnameinfo = getnameinfo
