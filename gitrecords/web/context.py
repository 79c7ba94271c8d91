"""What a request works with: the repository pool, the borrowed repository, who is asking.

A :class:`~gitrecords.Repository` is not shared between threads: each request
borrows one from a small pool and gives it back when it ends. Every read looks
up the branch tip again, so commits pushed into the repository while the
server runs are seen by the next request. The blueprints (:mod:`.api`,
:mod:`.admin`) import these helpers; the factory (:mod:`.app`) imports the
blueprints, and nothing imports the factory.
"""

from __future__ import annotations

import hmac
import ipaddress
import queue
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app, g, request

from ..repository import Repository
from ..users import User, UsersFile
from .errors import HTTPProblem

#: worker processes of a bulk edit made through the server: none. A server process may run
#: other requests in threads, and a process forked while another thread holds one of libgit2's
#: locks would wait for it forever; the edit runs in the request's thread, as before.
BULK_WORKERS = 1


class RepositoryPool:
    """Open repositories for request threads: borrow one, give it back."""

    def __init__(
        self, path: str, branch: str | None, durable: bool, size: int = 8, author: str | None = None
    ) -> None:
        self.path = path
        self.branch = branch
        self.durable = durable
        self.author = author
        self._idle: queue.LifoQueue[Repository] = queue.LifoQueue(maxsize=size)
        #: the committer of every write: the server's identity (``GITRECORDS_AUTHOR``, else the
        #: repository's default author), whoever the author is
        self.committer: tuple[str, str] | None = None
        first = self.open()  # fail at start-up, not at the first request
        self.committer = first.writer.committer = first.writer.identity()
        self.put(first)

    def open(self) -> Repository:
        return Repository(
            self.path, branch=self.branch, durable=self.durable, author=self.author, committer=self.committer
        )

    @contextmanager
    def borrow(self) -> Iterator[Repository]:
        repo = self.get()
        try:
            yield repo
        finally:
            self.put(repo)

    def get(self) -> Repository:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self.open()

    def put(self, repo: Repository) -> None:
        if repo.in_transaction is not None:  # pragma: no cover - a request never leaves one open
            repo.close()
            return
        try:
            self._idle.put_nowait(repo)
        except queue.Full:
            repo.close()


def current_repo() -> Repository:
    """The repository this request reads and writes (borrowed until the request ends)."""
    repo = g.get("gitrecords_repo")
    if repo is None:
        repo = g.gitrecords_repo = current_app.extensions["gitrecords"].get()
    return repo


@dataclass(frozen=True)
class Person:
    """Who makes a request: a role, and for someone of the users file a name and an email (the git
    author of their writes); the shared tokens have a role only (the server is the author)."""

    role: str
    name: str | None = None
    email: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role})" if self.name else self.role


def users_file() -> UsersFile | None:
    return current_app.extensions.get("gitrecords.users")


def role_for(token: str | None) -> str | None:
    """'admin', 'write' or None for a presented shared token (compared in constant time)."""
    if not token:
        return None
    admin = current_app.config["GITRECORDS_ADMIN_TOKEN"]
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return "admin"
    writer = current_app.config["GITRECORDS_TOKEN"]
    if writer and hmac.compare_digest(token.encode(), writer.encode()):
        return "write"
    return None


def person_of(user: User) -> Person:
    return Person(user.role, user.name, user.email)


def person_for(token: str | None) -> Person | None:
    """Whoever ``token`` belongs to: a shared token's role, or a person of the users file."""
    role = role_for(token)
    if role is not None:
        return Person(role)
    users = users_file()
    user = users.authenticate(token) if users is not None else None
    return person_of(user) if user is not None else None


def trusted_person() -> Person | None:
    """The person named by the trusted user header (``GITRECORDS_TRUSTED_USER_HEADER``), honoured only
    when the request comes straight from an address of ``GITRECORDS_TRUSTED_PROXIES`` (loopback when
    none is configured) and the header holds the email of someone in the users file."""
    config = current_app.config
    header = config["GITRECORDS_TRUSTED_USER_HEADER"]
    users = users_file()
    if not header or users is None:
        return None
    value = request.headers.get(header, "").strip()
    if not value or not from_trusted_proxy(request.remote_addr):
        return None
    user = users.get(value)
    return person_of(user) if user is not None else None


def from_trusted_proxy(address: str | None) -> bool:
    """Whether the peer address (the socket's, never ``X-Forwarded-For``) is a trusted proxy."""
    return within(address, current_app.extensions["gitrecords.trusted_proxies"])


def within(address: str | None, networks: list[Network]) -> bool:
    """Whether the peer ``address`` is in one of ``networks``; with none, whether it is loopback."""
    if not address:
        return False
    try:
        peer = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if not networks:
        return peer.is_loopback
    return any(peer.version == net.version and peer in net for net in networks)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(addresses: Iterable[str] | str | None) -> list[Network]:
    """``GITRECORDS_TRUSTED_PROXIES`` (addresses or networks, a list or a comma-separated string)."""
    if not addresses:
        return []
    if isinstance(addresses, str):
        addresses = addresses.split(",")
    networks = []
    for address in addresses:
        try:
            networks.append(ipaddress.ip_network(address.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {address!r} is not an IP address or network") from None
    return networks


def cross_site_write() -> bool:
    """Whether a browser sent this request, one that may write, from another site's page: such
    a request carries what the browser sends by itself (a cookie, a client certificate, an SSO
    login the proxy turns into the trusted header), never a token a page of ours chose to send."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    fetched_from = request.headers.get("Sec-Fetch-Site")
    if fetched_from is not None:
        return fetched_from in ("cross-site", "same-site")
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin == "null"  # a sandboxed or file page
    return urllib.parse.urlsplit(origin).netloc.lower() != request.host.lower()


def api_person() -> Person | None:
    """Who makes this REST request: the bearer token's owner, else the trusted header's person
    (not for a browser's write from another site's page: see :func:`cross_site_write`)."""
    person = person_for(bearer_token())
    if person is None and not cross_site_write():
        person = trusted_person()
    g.gitrecords_person = person
    return person


def writes_enabled() -> bool:
    config = current_app.config
    return bool(config["GITRECORDS_TOKEN"] or config["GITRECORDS_ADMIN_TOKEN"] or users_file() is not None)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def author() -> tuple[str, str] | str | None:
    """The git author of this request's writes: the person of the users file making it, else the
    server's ``GITRECORDS_AUTHOR`` (the committer of every write either way)."""
    person = g.get("gitrecords_person")
    if person is not None and person.email:
        return person.name, person.email
    return current_app.config["GITRECORDS_AUTHOR"]


#: an integer as a query parameter writes it
_INTEGER = re.compile(r"-?[0-9]+")


def int_arg(name: str, default: int, lowest: int = 1, highest: int | None = None) -> int:
    """Query parameter ``name`` as an integer from ``lowest`` to ``highest``; 400 otherwise (the API
    and the pages refuse the same values)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        # ASCII digits only: int() also reads " 2", "2_0", "+2" and digits of other scripts (U+FF12)
        if not _INTEGER.fullmatch(raw):
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise HTTPProblem(400, f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if value < lowest or (highest is not None and value > highest):
        upper = f" and {highest}" if highest is not None else ""
        raise HTTPProblem(400, f"query parameter {name!r} must be between {lowest}{upper}, not {value}")
    return value
