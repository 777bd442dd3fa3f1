"""An auditor's witness: `python -m audit.witness`.

Standard library and `cryptography` only (through audit.note and audit.merkle), like
`python -m audit.verify`: run it anywhere, away from the server it watches. It keeps, in a
state file of its own, the largest checkpoint of the log it has cosigned; it cosigns a new
checkpoint only if that checkpoint is signed by the log's key and its tree is an extension of
the one it kept (an RFC 6962 consistency proof), and refuses anything else: a smaller tree (a
rollback), the same size with another root, or a proof that does not verify (a fork or a
rewrite). Cosignatures are C2SP `cosignature/v1` signature lines (https://c2sp.org/
tlog-cosignature); Oversight stores and shows them.

    python -m audit.witness keygen NAME
        a new witness key: prints the signer (keep it secret, in a file) and its vkey (give
        it to Oversight's AUDIT_WITNESS_KEYS).

    python -m audit.witness check --url URL --token TOKEN --log-key VKEY --key FILE
                                  --state FILE [--submit]
        fetch the log's latest checkpoint and the consistency proof from the last one cosigned,
        check, cosign, and print the cosignature line; --submit gives it back to Oversight.

    python -m audit.witness serve --log-key VKEY --key FILE --state FILE [--port N]
        answer C2SP tlog-witness `add-checkpoint` requests (Oversight POSTs each new checkpoint
        to the URLs in AUDIT_WITNESS_URLS) with the cosignature, or 409 and the size it knows.

Exit status: 0 (cosigned), 1 (refused: the line says why), 2 (usage or network error).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from audit import merkle, note


class Refused(Exception):
    """The checkpoint is not cosigned; str() says why."""


class StaleOld(Refused):
    """An add-checkpoint request named another size than the one this witness last cosigned."""

    def __init__(self, known: int) -> None:
        super().__init__(f"the witness last cosigned size {known}")
        self.known = known


@dataclass
class State:
    origin: str
    size: int
    root: bytes

    @classmethod
    def load(cls, path: Path) -> State | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["origin"], data["size"], bytes.fromhex(data["root"]))

    def save(self, path: Path) -> None:
        """Atomically: a witness that dies mid-write keeps the state it had."""
        body = json.dumps({"origin": self.origin, "size": self.size, "root": self.root.hex()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".witness-state-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body + "\n")
        os.replace(tmp, path)


def update(
    state: State | None, signed: str, log_vkey: str, old: int, proof: Sequence[bytes]
) -> tuple[State, str]:
    """Check the signed checkpoint `signed` against what the witness kept, with the
    consistency proof from size `old` (the size it kept): (the new state, the checkpoint's
    text), or Refused saying why."""
    try:
        text = note.open_note(signed, log_vkey)
        origin, size, root = note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise Refused(f"not a checkpoint signed by the log's key: {exc}") from None
    kept = state or State(origin, 0, merkle.EMPTY_ROOT)
    if origin != kept.origin:
        raise Refused(f"a checkpoint of {origin!r}, not of the log watched ({kept.origin!r})")
    if old != kept.size:
        raise StaleOld(kept.size)
    if size < kept.size:
        raise Refused(
            f"rollback: the log now says size {size}, smaller than size {kept.size}, which "
            "this witness cosigned"
        )
    if size == kept.size and root != kept.root:
        raise Refused(f"fork: size {size} with another root than the one cosigned")
    if not merkle.verify_consistency(kept.size, size, kept.root, root, list(proof)):
        raise Refused(
            f"not an extension: size {size} is not consistent with size {kept.size} "
            "(the log was rewritten or forked)"
        )
    return State(origin, size, root), text


def cosign(text: str, signer: str) -> str:
    return note.cosign(text, signer, int(time.time()))


# --- pulling from Oversight ---------------------------------------------------------------------


def _open(url: str, **kwargs) -> bytes:
    """An HTTP(S) request (never file: or other schemes); the response body."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url}: not an http(s) address")
    request = urllib.request.Request(url, **kwargs)  # noqa: S310 (checked just above)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.read()


def _get(url: str, token: str) -> dict:
    return json.loads(_open(url, headers={"Authorization": f"Token {token}"}))


def check(base: str, token: str, log_vkey: str, signer: str, state_path: Path) -> tuple[str, int]:
    """Fetch, check and cosign the latest checkpoint: (the cosignature line, its size)."""
    state = State.load(state_path)
    latest = _get(f"{base}/api/v1/audit/checkpoints/latest/", token)
    old = state.size if state else 0
    proof: list[bytes] = []
    if state and latest["size"] > state.size:
        body = _get(
            f"{base}/api/v1/audit/proofs/consistency/?from={state.size}&to={latest['size']}",
            token,
        )
        proof = [bytes.fromhex(h) for h in body["proof"]]
    new, text = update(state, latest["note"], log_vkey, old, proof)
    line = cosign(text, signer)
    new.save(state_path)
    return line, new.size


def submit(base: str, token: str, size: int, line: str) -> None:
    _open(
        f"{base}/api/v1/audit/checkpoints/{size}/cosignatures/",
        data=json.dumps({"cosignature": line}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )


# --- serving tlog-witness add-checkpoint --------------------------------------------------------


def parse_add_checkpoint(body: str) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, signed checkpoint) of a C2SP tlog-witness add-checkpoint
    request body: "old N", one base64 hash per line, a blank line, the signed note."""
    head, sep, signed = body.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines[0].startswith("old "):
        raise ValueError('expected "old <size>", proof lines, a blank line, then the checkpoint')
    old = int(lines[0][4:])
    proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    return old, proof, signed


def serve(host: str, port: int, log_vkey: str, signer: str, state_path: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/add-checkpoint":
                return self._reply(404, "not found\n")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                old, proof, signed = parse_add_checkpoint(self.rfile.read(length).decode())
                new, text = update(State.load(state_path), signed, log_vkey, old, proof)
            except StaleOld as exc:
                return self._reply(409, f"{exc.known}\n", "text/x.tlog.size")
            except Refused as exc:
                return self._reply(409, f"{exc}\n")
            except ValueError as exc:
                return self._reply(400, f"{exc}\n")
            line = cosign(text, signer)
            new.save(state_path)
            return self._reply(200, line)

        def _reply(self, status: int, body: str, kind: str = "text/plain; charset=utf-8"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # quiet, on stderr
            sys.stderr.write(f"witness: {format % args}\n")

    server = ThreadingHTTPServer((host, port), Handler)
    print(
        f"witness listening on http://{host}:{server.server_address[1]}/add-checkpoint", flush=True
    )
    server.serve_forever()


# --- the command line ---------------------------------------------------------------------------


def _read(value: str) -> str:
    path = Path(value)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.witness", description=__doc__.split("\n\n")[0]
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    keygen = verbs.add_parser("keygen", help="make a witness key")
    keygen.add_argument("name", help="the witness's name, e.g. witness.example.org/w1")
    for name in ("check", "serve"):
        verb = verbs.add_parser(name)
        verb.add_argument("--log-key", required=True, help="the log's vkey, or a file holding it")
        verb.add_argument("--key", required=True, help="the witness's signer, or a file with it")
        verb.add_argument("--state", required=True, type=Path, help="the witness's state file")
    check_verb = verbs.choices["check"]
    check_verb.add_argument("--url", required=True, help="Oversight's address")
    check_verb.add_argument("--token", required=True, help="an API token that reads the log")
    check_verb.add_argument("--submit", action="store_true", help="give the cosignature back")
    serve_verb = verbs.choices["serve"]
    serve_verb.add_argument("--host", default="127.0.0.1")
    serve_verb.add_argument("--port", type=int, default=8050)
    args = parser.parse_args(argv)
    if args.verb == "keygen":
        signer = note.generate_cosigner(args.name)
        print(signer)
        print(note.cosigner_vkey_for(signer))
        return 0
    try:
        log_vkey, signer = _read(args.log_key), _read(args.key)
        if args.verb == "serve":
            serve(args.host, args.port, log_vkey, signer, args.state)
            return 0
        line, size = check(args.url.rstrip("/"), _read(args.token), log_vkey, signer, args.state)
        if args.submit:
            submit(args.url.rstrip("/"), _read(args.token), size, line)
    except Refused as exc:
        print(f"REFUSED: {exc}")
        return 1
    except (OSError, ValueError, KeyError, note.NoteError, urllib.error.URLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"OK: cosigned size {size}")
    print(line, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
