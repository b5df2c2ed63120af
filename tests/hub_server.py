"""A TEST DOUBLE of the Hugging Face Hub's HTTP API, served on 127.0.0.1 for end-to-end publishing tests.

This is not the Hub and not a mirror of it: it keeps model repos in memory and answers just the calls that
`huggingface_hub` 2.4 and `transformers` make to publish and load a model: create a repo and a branch, check a
README's YAML, preupload + LFS batch + LFS upload + commit (what `upload_folder` does), repo info and revision
resolution, file listing, and file download through `/resolve/` with the headers `hf_hub_download` reads (ETag,
X-Repo-Commit, Content-Length, ranges). Any non-empty bearer token is accepted and recorded in `tokens_seen`.

It speaks the LFS protocol only, no Xet: `huggingface_hub` 2.4 chooses Xet on the client side whenever `hf_xet` is
installed (there is no server-side negotiation for uploads), so uploading clients must run with
`HF_HUB_DISABLE_XET=1`. Downloads need nothing special: without an `X-Xet-Hash` header the client fetches files
over plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from huggingface_hub import ModelCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK

USER = "test-user"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".png", ".jpg")
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    size: int
    git_oid: str
    content: bytes | None = None  # regular files
    lfs_oid: str | None = None  # LFS files: content lives in the LFS store under this sha256


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit oid
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)  # commit oid -> tree
    messages: dict[str, str] = field(default_factory=dict)  # commit oid -> summary


class HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


class HubTestServer:
    """In-memory Hub test double on a free port of 127.0.0.1; use as a context manager, read `endpoint`."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.tokens_seen: set[str] = set()
        self.unhandled: list[str] = []  # "METHOD path" of requests this double does not implement
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Contents of every file of a repo at a revision (for assertions)."""
        repo = self.repos[repo_id]
        tree = repo.commits[self._commit_oid(repo, revision)]
        return {path: self._content(stored) for path, stored in tree.items()}

    # -- state ------------------------------------------------------------------------------------------------

    def _repo(self, repo_id: str, token: str | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and token is None):
            raise HubError(401 if token is None else 404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    @staticmethod
    def _commit_oid(repo: Repo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _content(self, stored: StoredFile) -> bytes:
        return stored.content if stored.lfs_oid is None else self.lfs_store[stored.lfs_oid]

    def _commit(self, repo: Repo, branch: str, tree: dict[str, StoredFile], summary: str) -> str:
        parent = repo.branches.get(branch, "")
        listing = json.dumps({path: stored.git_oid for path, stored in sorted(tree.items())})
        oid = hashlib.sha1(f"{parent}\n{summary}\n{listing}".encode()).hexdigest()
        repo.commits[oid] = tree
        repo.messages[oid] = summary
        repo.branches[branch] = oid
        return oid

    # -- API --------------------------------------------------------------------------------------------------

    def create_repo(self, body: dict, token: str | None) -> tuple[int, dict]:
        _require_token(token)
        if body.get("type", "model") != "model":
            raise HubError(400, "This test double only hosts model repos")
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": url}
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo = self.repos[repo_id] = Repo(repo_id, private)
        gitattributes = StoredFile(len(GITATTRIBUTES), git_blob_oid(GITATTRIBUTES), content=GITATTRIBUTES)
        self._commit(repo, "main", {".gitattributes": gitattributes}, "initial commit")
        return 200, {"url": url, "name": repo_id}

    def create_branch(self, repo_id: str, branch: str, body: dict, token: str | None) -> tuple[int, dict]:
        _require_token(token)
        repo = self._repo(repo_id, token)
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        repo.branches[branch] = self._commit_oid(repo, body.get("startingPoint") or "main")
        return 200, {}

    def repo_info(self, repo_id: str, revision: str, token: str | None) -> dict:
        repo = self._repo(repo_id, token)
        oid = self._commit_oid(repo, revision)
        tree = repo.commits[oid]
        card = _card_metadata(self._content(tree["README.md"])) if "README.md" in tree else {}
        return {
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "tags": card.get("tags", []),
            "pipeline_tag": card.get("pipeline_tag"),
            "library_name": card.get("library_name"),
            "cardData": card,
            "siblings": [{"rfilename": path} for path in sorted(tree)],
        }

    def tree(self, repo_id: str, revision: str, path: str, recursive: bool, token: str | None) -> list[dict]:
        repo = self._repo(repo_id, token)
        tree = repo.commits[self._commit_oid(repo, revision)]
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries, folders = [], set()
        for file_path, stored in sorted(tree.items()):
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": file_path}
            if stored.lfs_oid is not None:
                entry["lfs"] = {"oid": stored.lfs_oid, "size": stored.size, "pointerSize": 134}
            entries.append(entry)
        return [{"type": "directory", "oid": "", "size": 0, "path": folder} for folder in sorted(folders)] + entries

    def preupload(self, repo_id: str, revision: str, body: dict, token: str | None) -> dict:
        _require_token(token)
        repo = self._repo(repo_id, token)
        tree = repo.commits[self._commit_oid(repo, revision)]
        answers = []
        for file in body["files"]:
            sample = base64.b64decode(file["sample"])
            is_lfs = file["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or file["size"] > 10 * 1024 * 1024
            existing = tree.get(file["path"])
            remote_oid = None if existing is None else (existing.lfs_oid or existing.git_oid)
            mode = "lfs" if is_lfs else "regular"
            answers.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
        return {"files": answers, "commitOid": repo.branches.get(revision)}

    def lfs_batch(self, repo_id: str, body: dict, token: str | None) -> dict:
        _require_token(token)
        self._repo(repo_id, token)
        if body.get("operation") != "upload":
            raise HubError(400, "This test double only takes LFS uploads")
        objects = []
        for item in body["objects"]:
            answer = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.lfs_store:
                answer["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{item['oid']}"}}
            objects.append(answer)
        return {"transfer": "basic", "objects": objects}

    def lfs_upload(self, oid: str, content: bytes) -> None:
        if hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match sha256 {oid}")
        self.lfs_store[oid] = content

    def commit(self, repo_id: str, revision: str, lines: list[dict], token: str | None, query: dict) -> dict:
        _require_token(token)
        if query.get("create_pr"):
            raise HubError(400, "This test double does not open pull requests")
        repo = self._repo(repo_id, token)
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        header = next(line["value"] for line in lines if line["key"] == "header")
        if header.get("parentCommit") and not repo.branches[revision].startswith(header["parentCommit"]):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        tree = dict(repo.commits[repo.branches[revision]])
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                content = base64.b64decode(value["content"])
                tree[value["path"]] = StoredFile(len(content), git_blob_oid(content), content=content)
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_store:
                    raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                size = len(self.lfs_store[value["oid"]])
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\nsize {size}\n"
                tree[value["path"]] = StoredFile(size, git_blob_oid(pointer.encode()), lfs_oid=value["oid"])
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                tree = {path: stored for path, stored in tree.items() if not path.startswith(value["path"] + "/")}
            elif key != "header":
                raise HubError(400, f"Unknown commit operation {key!r}")
        oid = self._commit(repo, revision, tree, header["summary"])
        return {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}

    def resolve(self, repo_id: str, revision: str, path: str, token: str | None) -> tuple[str, StoredFile, bytes]:
        repo = self._repo(repo_id, token)
        oid = self._commit_oid(repo, revision)
        stored = repo.commits[oid].get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        return oid, stored, self._content(stored)


def _require_token(token: str | None) -> None:
    if token is None:
        raise HubError(401, "Invalid credentials in Authorization header")


def _card_metadata(readme: bytes) -> dict:
    match = REGEX_YAML_BLOCK.search(readme.decode())
    return (yaml.safe_load(match.group(2)) or {}) if match else {}


def validate_yaml(body: dict) -> tuple[int, dict]:
    """Roughly what the Hub checks in a README: a YAML mapping up front that parses as model card metadata."""
    try:
        metadata = _card_metadata(body["content"].encode())
        if not isinstance(metadata, dict):
            raise ValueError("the metadata block is not a mapping")
        ModelCardData(**metadata)
    except (ValueError, yaml.YAMLError) as error:
        return 400, {"errors": [{"message": str(error)}], "warnings": []}
    return 200, {"errors": [], "warnings": []}


def _make_handler(hub: HubTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output quiet
            pass

        def do_GET(self):
            self._dispatch("GET")

        def do_HEAD(self):
            self._dispatch("HEAD")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def _token(self) -> str | None:
            authorization = self.headers.get("Authorization", "")
            if authorization.startswith("Bearer ") and authorization[7:].strip():
                token = authorization[7:].strip()
                hub.tokens_seen.add(token)
                return token
            return None

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head_only: bool = False):
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **(headers or {})}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _json(self, status: int, payload) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            path, query = url.path, {key: values[-1] for key, values in parse_qs(url.query).items()}
            body = self._body() if method in ("POST", "PUT") else b""
            token = self._token()
            try:
                with hub._lock:
                    self._route(method, path, query, body, token)
            except HubError as error:
                headers = {"Content-Type": "application/json", "X-Error-Message": error.message}
                if error.error_code:
                    headers["X-Error-Code"] = error.error_code
                payload = json.dumps({"error": error.message}).encode()
                self._send(error.status, payload, headers, head_only=method == "HEAD")

        def _route(self, method: str, path: str, query: dict, body: bytes, token: str | None) -> None:
            def match(pattern: str) -> dict | None:
                found = re.fullmatch(pattern, path)
                return {key: value and unquote(value) for key, value in found.groupdict().items()} if found else None

            if method == "GET" and path == "/api/whoami-v2":
                _require_token(token)
                return self._json(200, {"type": "user", "name": USER, "orgs": [], "auth": {"type": "access_token"}})
            if method == "POST" and path == "/api/repos/create":
                return self._json(*hub.create_repo(json.loads(body), token))
            if method == "POST" and path == "/api/validate-yaml":
                return self._json(*validate_yaml(json.loads(body)))
            if method == "PUT" and (found := match(r"/lfs-upload/(?P<oid>[0-9a-f]{64})")):
                hub.lfs_upload(found["oid"], body)
                return self._send(200)
            if method == "POST" and (found := match(rf"/{REPO}\.git/info/lfs/objects/batch")):
                return self._json(200, hub.lfs_batch(found["repo"], json.loads(body), token))
            if method == "POST" and (found := match(rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)")):
                return self._json(200, hub.preupload(found["repo"], found["rev"], json.loads(body), token))
            if method == "POST" and (found := match(rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)")):
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                return self._json(200, hub.commit(found["repo"], found["rev"], lines, token, query))
            if method == "POST" and (found := match(rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)")):
                return self._json(*hub.create_branch(found["repo"], found["branch"], json.loads(body or b"{}"), token))
            if method == "GET" and (found := match(rf"/api/models/{REPO}(/revision/(?P<rev>[^/]+))?")):
                return self._json(200, hub.repo_info(found["repo"], found["rev"] or "main", token))
            if method == "GET" and (found := match(rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(/(?P<path>.*))?")):
                recursive = query.get("recursive", "false").lower() == "true"
                return self._json(200, hub.tree(found["repo"], found["rev"], found["path"] or "", recursive, token))
            if method in ("GET", "HEAD") and (found := match(rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)")):
                return self._serve_file(method, found, token)
            hub.unhandled.append(f"{method} {path}")
            raise HubError(404, f"This Hub test double does not implement {method} {path}")

        def _serve_file(self, method: str, found: dict, token: str | None) -> None:
            commit_oid, stored, content = hub.resolve(found["repo"], found["rev"], found["path"], token)
            headers = {
                "ETag": f'"{stored.lfs_oid or stored.git_oid}"',
                "X-Repo-Commit": commit_oid,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            status = 200
            requested = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if requested and method == "GET":
                start = int(requested[1])
                end = int(requested[2]) if requested[2] else len(content) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
                content, status = content[start : end + 1], 206
            self._send(status, content, headers, head_only=method == "HEAD")

    return Handler
