"""Transports and the repositories git can hand us: credentials in URLs over real smart HTTP,
prompts on a terminal, ssh's own errors, repositories owned by another user, partial and
shallow clones. Every git here is the real binary; the HTTP server is ``git http-backend``."""

from __future__ import annotations

import base64
import json
import os
import select
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.errors import RepositoryError
from gitrecords.replication import pull, push, shown_url

pytestmark = pytest.mark.usefixtures("curator_identity")

USER = "curator"
TOKEN = "ghp_S3cr3tT0ken"


# -- a smart-HTTP git server: git http-backend behind Basic authentication ------------------------


class GitHTTPHandler(BaseHTTPRequestHandler):
    """Serves the repositories under ``server.root`` with ``git http-backend`` (CGI), to a client
    that sends USER and TOKEN; every other request gets 401, as a real host does."""

    server: GitHTTPServer

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if not size:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _backend(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        body = self._body()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = dict(
            os.environ,
            GIT_PROJECT_ROOT=str(self.server.root),
            GIT_HTTP_EXPORT_ALL="1",
            PATH_INFO=path,
            QUERY_STRING=query,
            REQUEST_METHOD=self.command,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_USER=USER,  # lets http-backend accept pushes
            REMOTE_ADDR="127.0.0.1",
            GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
        )
        proc = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
        head, _, out = proc.stdout.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode("latin-1").split("\r\n") if ": " in line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value)
        self.end_headers()
        self.wfile.write(out)


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), GitHTTPHandler)
        self.root = root


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """(folder served, base URL without credentials) of a smart-HTTP server on 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = tmp_path / "srv"
    root.mkdir()
    httpd = GitHTTPServer(root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def served(root: Path) -> Repository:
    """A data repository with three records, served over HTTP as /server.git."""
    server = Repository.init(root / "server.git")
    for title in ("one", "two", "three"):
        Record.create({"title": title}, repo=server)
    return server


def clone(source: Repository, dest: Path, *options: str) -> Path:
    subprocess.run(
        ["git", "clone", "--quiet", *options, f"file://{source.git_dir}", str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def edit(repo: Repository, record_id: uuid.UUID, title: str) -> None:
    record = Record.get_record(record_id, repo=repo)
    record["title"] = title
    record.commit()
    repo.close()


def everything_stored(git_dir: Path) -> bytes:
    """Every byte a repository holds apart from its config: each object's content (inflated),
    refs, reflogs, FETCH_HEAD, gitrecords' index."""
    objects = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    files = [
        path.read_bytes()
        for path in sorted(git_dir.rglob("*"))
        if path.is_file() and path.name != "config" and "objects" not in path.relative_to(git_dir).parts
    ]
    return objects + b"".join(files)


# -- 1. credentials in URLs -----------------------------------------------------------------------


def test_shown_url_strips_userinfo_as_git_does() -> None:
    assert shown_url(f"https://{USER}:{TOKEN}@host/srv.git") == "https://host/srv.git"
    assert shown_url("https://user@host:8443/srv.git") == "https://host:8443/srv.git"
    assert shown_url("https://u:p@ss@host/a@b.git") == "https://host/a@b.git"  # '@' in a password
    assert shown_url("ssh://git:pw@host/srv.git") == "ssh://host/srv.git"
    assert shown_url("git@host:srv.git") == "host:srv.git"  # git: "localhost:/srv" for user@...
    for unchanged in ("origin", "/srv/a@b.git", "./x:y", "file:///srv/a@b.git", "https://host/x.git"):
        assert shown_url(unchanged) == unchanged


def test_a_token_in_a_url_reaches_no_commit_no_output_and_no_file(
    http_root: tuple[Path, str], tmp_path: Path, gr
) -> None:
    root, base = http_root
    server = served(root)
    ids = sorted(server.ids())
    plain = f"{base}/server.git"
    secret = f"http://{USER}:{TOKEN}@{plain[len('http://') :]}"
    alice_path = clone(server, tmp_path / "alice")
    alice = Repository(alice_path)
    bob_path = clone(server, tmp_path / "bob.git", "--bare")
    outputs: list[str] = []

    def run(where: Path, *args: str, code: int = 0) -> str:
        result = gr(where, *args)
        outputs.extend([result.stdout, result.stderr])
        assert result.exit_code == code, result.stderr
        return result.stdout if code == 0 else result.stderr

    # both sides changed: a merge commit, whose message names the URL without the token
    edit(alice, ids[0], "one (alice)")
    edit(server, ids[1], "two (server)")
    run(alice_path, "pull", secret, "main")
    assert outputs[-1].startswith(f"Merged {plain}/main into main: commit ")
    assert git(alice_path / ".git", "log", "-1", "--format=%s") == f"merge main of {plain} into main\n"
    assert json.loads(run(alice_path, "pull", secret, "main", "--json"))["status"] == "up-to-date"
    assert outputs[-1] == ""
    # push: --json names the remote without the token
    pushed = json.loads(run(alice_path, "push", secret, "main", "--json"))
    assert pushed["status"] == "pushed" and pushed["remote"] == plain
    run(alice_path, "push", secret, "main")
    assert outputs[-1] == f"{plain}/main is up to date.\n"
    # a fast-forward (its reflog entry names the URL too)
    assert json.loads(run(bob_path, "pull", secret, "--json"))["status"] == "fast-forward"
    # refused push, missing branch, wrong token, missing repository, a named remote holding a token
    edit(server, ids[2], "three (server)")
    edit(alice, ids[0], "one (alice again)")
    assert run(alice_path, "push", secret, "main", code=1) == (
        f"Error: push to {plain} rejected: {plain}/main has commits that main does not have: "
        f"run 'gitrecords pull {plain} main' first\n"
    )
    assert run(alice_path, "pull", secret, "nope", code=1) == f"Error: {plain} has no branch 'nope'\n"
    wrong = secret.replace(TOKEN, TOKEN[::-1])
    assert run(alice_path, "pull", wrong, "main", code=1) == (
        f"Error: git fetch {plain} failed: fatal: Authentication failed for '{plain}/'\n"
    )
    missing = secret.replace("server.git", "missing.git")
    assert run(alice_path, "push", missing, "main", code=1) == (
        f"Error: git push {plain.replace('server', 'missing')} failed: "
        f"fatal: repository '{plain.replace('server', 'missing')}/' not found\n"
    )
    git(alice_path / ".git", "remote", "add", "tokened", missing)
    assert run(alice_path, "pull", "tokened", "main", code=1) == (
        f"Error: git fetch tokened failed: fatal: repository '{plain.replace('server', 'missing')}/' "
        "not found\n"
    )
    run(alice_path, "pull", secret, "main")
    assert outputs[-1].startswith(f"Merged {plain}/main into main: commit ")

    for text in outputs:
        assert TOKEN not in text and f"{USER}@" not in text, text
    for git_dir in (alice_path / ".git", bob_path, server.git_dir):
        stored = everything_stored(git_dir)
        assert TOKEN.encode() not in stored and f"{USER}:".encode() not in stored
    history = git(server, "log", "--all", "--format=%B") + git(
        alice_path / ".git", "log", "--all", "--format=%B"
    )
    assert TOKEN not in history and f"merge main of {plain} into main" in history
    fsck(server)


def test_library_errors_and_results_hold_no_credentials(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_root
    server = served(root)
    alice = Repository(clone(server, tmp_path / "alice.git", "--bare"))
    plain = f"{base}/server.git"
    secret = f"http://{USER}:{TOKEN}@{plain[len('http://') :]}"
    edit(alice, next(iter(alice.ids())), "changed")
    assert push(alice, secret).remote == plain
    with pytest.raises(RepositoryError) as raised:
        pull(alice, secret.replace(TOKEN, "wrong"))
    assert str(raised.value) == f"git fetch {plain} failed: fatal: Authentication failed for '{plain}/'"


# -- 2. prompts on a terminal, none elsewhere -----------------------------------------------------

#: runs the CLI with the pty on stdin as its controlling terminal, as a shell would
ON_A_TERMINAL = """
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
from gitrecords.cli import main
sys.argv = ["gitrecords", *sys.argv[1:]]
main()
"""


def test_git_asks_for_a_password_on_a_terminal(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_root
    server = served(root)
    alice_path = clone(server, tmp_path / "alice.git", "--bare")
    edit(Repository(alice_path), next(iter(server.ids())), "changed")
    plain = f"{base}/server.git"
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", ON_A_TERMINAL, "--repo", str(alice_path), "push", plain, "--json"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    answers = [(b"Username for", USER), (b"Password for", TOKEN)]
    deadline = time.monotonic() + 60
    try:
        while answers and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                assert proc.poll() is None, proc.communicate()
                continue
            try:
                seen += os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal without asking
                break
            prompt, answer = answers[0]
            if prompt in seen and seen.rstrip().endswith(b":"):
                os.write(master, answer.encode() + b"\n")
                answers.pop(0)
                seen = b""
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(master)
    assert not answers, seen
    assert proc.returncode == 0, stderr
    assert json.loads(stdout) == {
        "status": "pushed",
        "remote": plain,
        "branch": "main",
        "commit": git(alice_path, "rev-parse", "main").strip(),
        "previous": git(alice_path, "rev-parse", "main~").strip(),
    }
    assert git(server, "rev-parse", "main") == git(alice_path, "rev-parse", "main")


def test_off_a_terminal_git_fails_at_once_but_askpass_works(
    http_root: tuple[Path, str], tmp_path: Path, gr, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, base = http_root
    server = served(root)
    alice_path = clone(server, tmp_path / "alice.git", "--bare")
    plain = f"{base}/server.git"
    result = gr(alice_path, "pull", plain, "main")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: git fetch {plain} failed: fatal: could not read Username for '{base}': "
        "terminal prompts disabled\n"
    )
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\ncase "$1" in Username*) echo {USER};; *) echo {TOKEN};; esac\n')
    askpass.chmod(0o755)
    monkeypatch.setenv("GIT_ASKPASS", str(askpass))
    result = gr(alice_path, "pull", plain, "main", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "up-to-date"


# -- 3. ssh's own reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said", ["Host key verification failed.", "git@server.invalid: Permission denied (publickey)."]
)
def test_ssh_errors_keep_what_ssh_said(
    said: str, repo: Repository, tmp_path: Path, gr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = tmp_path / "ssh"
    ssh.write_text(f"#!/bin/sh\necho {shlex.quote(said)} >&2\nexit 255\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(ssh))
    reason = f"{said}; fatal: Could not read from remote repository."
    url = f"ssh://git:{TOKEN}@server.invalid/srv.git"
    with pytest.raises(RepositoryError) as raised:
        pull(repo, url)
    assert str(raised.value) == f"git fetch ssh://server.invalid/srv.git failed: {reason}"
    with pytest.raises(RepositoryError) as raised:
        push(repo, "git@server.invalid:srv.git")
    assert str(raised.value) == f"git push server.invalid:srv.git failed: {reason}"
    result = gr(repo, "push", url)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: git push ssh://server.invalid/srv.git failed: {reason}\n"


# -- 4. a repository owned by another user --------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_repository_owned_by_another_user_says_so_and_how_to_trust_it(
    repo: Repository, gr, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.close()
    for folder, dirs, files in os.walk(repo.path):
        for name in [".", *dirs, *files]:
            os.chown(os.path.join(folder, name), 12345, 12345)
    advice = f"git config --global --add safe.directory {repo.path}"
    expected = (
        f"{repo.path}: not owned by current user (git and libgit2 refuse a repository that belongs to "
        f"another user); if you trust it, run: {advice}"
    )
    with pytest.raises(RepositoryError) as raised:
        Repository(repo.path)
    assert str(raised.value) == expected
    result = gr(repo, "list")
    assert (result.exit_code, result.stderr) == (2, f"Error: {expected} (from --repo or GITRECORDS_REPO)\n")
    # the advice works: it writes ~/.gitconfig, which libgit2 reads
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    subprocess.run(shlex.split(advice), check=True)
    assert gr(repo, "list").exit_code == 0


# -- 5. and 6. partial and shallow clones ---------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path) -> tuple[Repository, uuid.UUID]:
    """A server whose record has four revisions (a partial clone lacks the old blobs)."""
    server = Repository.init(tmp_path / "server.git")
    git(server, "config", "uploadpack.allowFilter", "true")
    record = Record.create({"title": "v0"}, repo=server)
    for n in range(1, 4):
        record["title"] = f"v{n}"
        record = record.commit()
    return server, record.id


def advice(message: str) -> str:
    """The command an error message says to run."""
    return message.split("run: ", 1)[1]


@pytest.mark.parametrize("kind", ["bare", "working", "extension"])
def test_a_partial_clone_is_refused_with_the_commands_that_complete_it(
    kind: str, history: tuple[Repository, uuid.UUID], tmp_path: Path, gr
) -> None:
    """``extension``: marked the way older git did (extensions.partialClone), which libgit2
    cannot even open."""
    server, record_id = history
    bare = kind == "bare"
    path = clone(server, tmp_path / "partial", "--filter=blob:none", *(["--bare"] if bare else []))
    git_dir = path if bare else path / ".git"
    missing = git(git_dir, "rev-list", "--objects", "--all", "--missing=print")
    assert "\n?" in "\n" + missing  # the old revisions' blobs are not there
    steps = [
        "fetch --refetch --no-filter origin",
        "config --unset remote.origin.promisor",
        "config --unset remote.origin.partialclonefilter",
    ]
    if kind == "extension":
        git(git_dir, "config", "extensions.partialClone", "origin")
        steps.append("config --unset extensions.partialClone")
    with pytest.raises(RepositoryError) as raised:
        Repository(path)
    message = str(raised.value)
    assert message == (
        f"{path} is a partial clone (git clone --filter): it lacks files that gitrecords reads and "
        "cannot fetch; clone again without --filter, or complete this clone, run: "
        + " && ".join(f"git -C {path} {step}" for step in steps)
    )
    for command in ("list", "history"):
        result = gr(path, command, *([str(record_id)] if command == "history" else []))
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == f"Error: {message} (from --repo or GITRECORDS_REPO)\n"

    subprocess.run(advice(message), shell=True, check=True, capture_output=True)
    clone_repo = Repository(path)
    assert [r.revision_id for r in Record.get_record(record_id, repo=clone_repo).revisions] == [0, 1, 2, 3]
    fsck(clone_repo)


def test_other_reasons_libgit2_gives_are_shown(repo: Repository, tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match=r"^/nowhere: not a git repository$"):
        Repository("/nowhere")
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.reftable", "true")
    with pytest.raises(RepositoryError) as raised:
        Repository(repo.path)
    assert str(raised.value) == (
        f"{repo.path}: cannot open this git repository: unsupported extension name extensions.reftable"
    )


@pytest.mark.parametrize("bare", [True, False], ids=["bare", "working"])
def test_a_shallow_clone_is_refused_with_the_command_that_unshallows_it(
    bare: bool, history: tuple[Repository, uuid.UUID], tmp_path: Path, gr
) -> None:
    server, record_id = history
    path = clone(server, tmp_path / "shallow", "--depth", "1", *(["--bare"] if bare else []))
    with pytest.raises(RepositoryError) as raised:
        Repository(path)
    message = str(raised.value)
    assert message == (
        f"{path} is a shallow clone (git clone --depth): revision numbers and creation dates need the "
        f"whole history; clone again without --depth, or complete this clone, run: "
        f"git -C {path} fetch --unshallow"
    )
    result = gr(path, "get", str(record_id))
    assert (result.exit_code, result.stderr) == (2, f"Error: {message} (from --repo or GITRECORDS_REPO)\n")

    subprocess.run(advice(message), shell=True, check=True, capture_output=True)
    record = Record.get_record(record_id, repo=Repository(path))
    assert record.revision_id == Record.get_record(record_id, repo=server).revision_id == 3
