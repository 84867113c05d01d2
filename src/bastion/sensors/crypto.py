"""Crypto sensors: misuse of `cryptography`, `hashlib` and `random` by the app's own code.

Each watcher wraps a primitive once per process and passes straight through without a session:
- AEAD nonce reuse (AES-GCM, ChaCha20-Poly1305, AES-CCM, AES-OCB3): the same (key, nonce) pair
  encrypting twice. The key is never read or kept: it is fingerprinted by encrypting nothing under
  a fixed nonce, and only a hash of (fingerprint, nonce) is remembered.
- `Cipher(..., modes.ECB())`; CBC/CTR/CFB/OFB/GCM encryptors reusing one IV with one key (hashes only).
- `hashlib.md5/sha1` (or `hashlib.new`) over a password, and an unsalted SHA-2 of a password: the
  calling function holds the password in a variable named like one and the hashed bytes contain it.
- `rsa.generate_private_key(key_size < 2048)`.
- `random.random/randint/choice/...` whose value flows (read from the bytecode after the call) into a
  variable, attribute, key or returning function named like a token, secret, OTP, reset or session value.
Events are located at the app's file:line and carry no key, nonce, IV or password.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import re
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from bastion.sensors import hook
from bastion.sensors.events import SensorSession

MIN_RSA_BITS = 2048
# Remembered (key, nonce) hashes per session; past this the reuse watcher stops learning new pairs.
MAX_NONCE_PAIRS = 100_000
MAX_CRYPTO_EVENTS = 1_000
_PASSWORD_NAME = re.compile(r"passw|passphrase|pwd", re.IGNORECASE)
_TOKEN_NAME = re.compile(r"token|secret|otp|reset|nonce|salt|passw|api_?key|session|csrf|(?:^|_)sid(?:$|_)|"
                         r"invite|verif|magic|activation|confirm", re.IGNORECASE)
_FAST_HASHES = frozenset({"md5", "sha1"})
_SHA2 = frozenset({"sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512"})
_RANDOM_FUNCS = ("random", "randint", "randrange", "choice", "choices", "getrandbits", "sample", "randbytes")
_AEAD_CLASSES = ("AESGCM", "ChaCha20Poly1305", "AESCCM", "AESOCB3")  # not SIV modes: built for nonce reuse
_original_sha256 = hashlib.sha256
_installed = False

# Event kinds this module records.
NONCE_REUSE = "crypto.nonce-reuse"
ECB_MODE = "crypto.ecb"
STATIC_IV = "crypto.static-iv"
PASSWORD_HASH = "crypto.password-hash"
SMALL_RSA = "crypto.rsa-key"
WEAK_RANDOM = "crypto.random"
# The probes (requests) during which the app encrypted something: worth sending twice to see reuse.
ENCRYPTING_PROBES = "crypto.encrypting-probes"
_SITES = "crypto.sites"


def install() -> None:
    """Wrap the primitives (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    _install_hashlib()
    _install_random()
    _install_cryptography()


def _digest(*parts: bytes) -> bytes:
    return _original_sha256(b"\x1f".join(parts)).digest()


def _state(session: SensorSession, key: str, factory: Callable[[], Any]) -> Any:
    return session.state.setdefault(key, factory())


def _emit_once(session: SensorSession, kind: str, detail: str, frame: FrameType | None) -> None:
    """One event per (kind, call site) per session: a token built from 32 `choice` calls is one finding."""
    if frame is None:
        return
    sites: set[tuple[str, str, int]] = _state(session, _SITES, set)
    site = (kind, frame.f_code.co_filename, frame.f_lineno)
    if site in sites:
        return
    sites.add(site)
    hook.emit_at(session, kind, detail, frame, kind_cap=MAX_CRYPTO_EVENTS)


def rearm(session: SensorSession) -> None:
    """Let every call site report once more in `session` (its events so far are kept).

    The first event at a site is caused by whichever request got there first, which with concurrent
    probes is a matter of timing; the exercise pass rearms before its sequential requests so each site
    it reaches has an event of its own, tied to a request chosen by the pass's order, not by timing.
    """
    session.state[_SITES] = set()


def _sensing(fn: Callable[..., None], *args: Any) -> None:
    """Run a watcher with the busy flag up, so its own calls (hashing, frame reads) are not sensed."""
    hook._busy.on = True
    try:
        fn(*args)
    finally:
        hook._busy.on = False


def _active() -> SensorSession | None:
    session = hook.active_session()
    return None if session is None or hook.busy() else session


def _app_caller(session: SensorSession, frame: FrameType | None) -> FrameType | None:
    """`frame` when it is the app's own code (any code when the session has no app roots)."""
    if frame is None:
        return None
    if session.app_roots and not session.is_app_file(frame.f_code.co_filename):
        return None
    return frame


# --- hashlib ------------------------------------------------------------------------------------------


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return None


def _on_hash(session: SensorSession, algorithm: str, data: Any, frame: FrameType | None) -> None:
    name = algorithm.lower().replace("-", "")
    if name not in _FAST_HASHES and name not in _SHA2:
        return
    caller = _app_caller(session, frame)
    raw = _as_bytes(data)
    if caller is None or not raw:
        return
    passwords = [b for n, v in caller.f_locals.items() if _PASSWORD_NAME.search(n)
                 for b in [_as_bytes(v)] if b is not None and len(b) >= 4]
    unsalted = any(p == raw for p in passwords)
    inside = unsalted or any(p in raw for p in passwords)
    if not inside or (name in _SHA2 and not unsalted):
        return  # a salted SHA-2 is judged by its cost elsewhere; here only what is surely wrong
    how = "unsalted" if unsalted else "salted, one fast round"
    _emit_once(session, PASSWORD_HASH, f"hashlib {name} of a password ({how}) in {caller.f_code.co_name}()",
               caller)


def _wrap_constructor(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def constructor(*args: Any, **kwargs: Any) -> Any:
        session = _active()
        if session is not None:
            data = args[0] if args else kwargs.get("string", kwargs.get("data"))
            _sensing(_on_hash, session, name, data, sys._getframe(1))
        return original(*args, **kwargs)

    constructor.__wrapped__ = original  # type: ignore[attr-defined]
    constructor.__name__ = getattr(original, "__name__", name)
    return constructor


def _wrap_new(original: Callable[..., Any]) -> Callable[..., Any]:
    def new(*args: Any, **kwargs: Any) -> Any:
        session = _active()
        if session is not None:
            algorithm = args[0] if args else kwargs.get("name", "")
            data = args[1] if len(args) > 1 else kwargs.get("data", kwargs.get("string"))
            if isinstance(algorithm, str):
                _sensing(_on_hash, session, algorithm, data, sys._getframe(1))
        return original(*args, **kwargs)

    new.__wrapped__ = original  # type: ignore[attr-defined]
    return new


def _install_hashlib() -> None:
    for name in ("md5", "sha1", *sorted(_SHA2)):
        original = getattr(hashlib, name, None)
        if original is not None:
            setattr(hashlib, name, _wrap_constructor(name, original))
    hashlib.new = _wrap_new(hashlib.new)  # type: ignore[assignment]


# --- random ---------------------------------------------------------------------------------------------


_STORES = frozenset({"STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF", "STORE_ATTR"})
_INTO_CALLER = frozenset({"YIELD_VALUE", "LIST_APPEND", "SET_ADD", "MAP_ADD"})  # a comprehension's result
_LOOKAHEAD = 40


@functools.cache
def _instructions(code: CodeType) -> tuple[dis.Instruction, ...]:
    return tuple(dis.get_instructions(code))


def _sink(frame: FrameType) -> str | None:
    """Where the value being computed at `frame`'s current call ends up: the variable or attribute it is
    stored in, or the function's own name when it is returned; None when dropped or unclear.

    A comprehension's values go to its caller, so the search continues there.
    """
    const: str | None = None
    for ins in _instructions(frame.f_code):
        if ins.offset <= frame.f_lasti:
            continue
        if ins.offset > frame.f_lasti + 2 * _LOOKAHEAD:
            return None
        if ins.opname == "LOAD_CONST" and isinstance(ins.argval, str):
            const = ins.argval
        elif ins.opname in _STORES:
            return str(ins.argval)
        elif ins.opname == "STORE_SUBSCR":
            return const
        elif ins.opname in ("RETURN_VALUE", "RETURN_CONST"):
            return frame.f_code.co_name
        elif ins.opname in _INTO_CALLER:
            return _sink(frame.f_back) if frame.f_back is not None else None
        elif ins.opname == "POP_TOP":
            return None
    return None


def _on_random(session: SensorSession, func: str, frame: FrameType | None) -> None:
    caller = _app_caller(session, frame)
    if caller is None:
        return
    # `"".join(random.choice(abc) for _ in range(32))` returned by new_reset_token(): the value's sink
    # names what it is for; a random number stored in `retry_jitter` next to a token is not one.
    sink = _sink(caller)
    if sink is None or not _TOKEN_NAME.search(sink):
        return
    where = caller.f_code.co_name
    if where.startswith("<") and caller.f_back is not None:
        where = caller.f_back.f_code.co_name
    _emit_once(session, WEAK_RANDOM, f"random.{func}() (not a CSPRNG) in {where}(): its value becomes {sink!r}",
               caller)


def _wrap_random(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def fn(*args: Any, **kwargs: Any) -> Any:
        session = _active()
        if session is not None:
            _sensing(_on_random, session, name, sys._getframe(1))
        return original(*args, **kwargs)

    fn.__wrapped__ = original  # type: ignore[attr-defined]
    fn.__name__ = name
    return fn


def _install_random() -> None:
    import random

    for name in _RANDOM_FUNCS:
        original = getattr(random, name, None)
        if original is not None:
            setattr(random, name, _wrap_random(name, original))


# --- cryptography -----------------------------------------------------------------------------------


def _remember_pair(session: SensorSession, *parts: bytes) -> bool:
    """Remember a (key, nonce) hash; True when it was seen before in this session."""
    pairs: set[bytes] = _state(session, "crypto.pairs", set)
    digest = _digest(*parts)
    if digest in pairs:
        return True
    if len(pairs) < MAX_NONCE_PAIRS:
        pairs.add(digest)
    return False


def _note_encryption(session: SensorSession) -> None:
    probe = hook.current_probe()
    if probe is not None:
        probes: list[Any] = _state(session, ENCRYPTING_PROBES, list)
        if len(probes) < 1000 and all(p is not probe for p in probes):
            probes.append(probe)


def _on_aead(session: SensorSession, cls_name: str, cipher: Any, original: Callable[..., Any], nonce: Any,
             frame: FrameType | None) -> None:
    raw_nonce = _as_bytes(nonce)
    caller = _app_caller(session, frame)
    if raw_nonce is None:
        return
    _note_encryption(session)
    try:
        # The key's fingerprint: the tag of an empty message under a fixed nonce (the key is never read).
        fingerprint = original(cipher, bytes(len(raw_nonce)), b"", None)
    except Exception:
        return
    if _remember_pair(session, b"aead", cls_name.encode(), fingerprint, raw_nonce) and caller is not None:
        _emit_once(session, NONCE_REUSE, f"{cls_name}.encrypt reused a nonce with the same key "
                                         f"({len(raw_nonce) * 8}-bit nonce; values not recorded)", caller)


def _wrap_aead(cls: Any) -> None:
    original = cls.encrypt
    if getattr(original, "__bastion_sensor__", False):
        return

    def encrypt(self: Any, nonce: Any, data: Any, associated_data: Any = None) -> Any:
        session = _active()
        if session is not None:
            _sensing(_on_aead, session, cls.__name__, self, original, nonce, sys._getframe(1))
        return original(self, nonce, data, associated_data)

    encrypt.__wrapped__ = original  # type: ignore[attr-defined]
    encrypt.__bastion_sensor__ = True  # type: ignore[attr-defined]
    try:
        cls.encrypt = encrypt
    except TypeError:
        pass  # an immutable extension type in this version of cryptography: not watched


def _on_cipher(session: SensorSession, cipher: Any, operation: str, frame: FrameType | None) -> None:
    from cryptography.hazmat.primitives.ciphers import modes

    caller = _app_caller(session, frame)
    mode, algorithm = getattr(cipher, "mode", None), getattr(cipher, "algorithm", None)
    name = getattr(algorithm, "name", "cipher")
    if isinstance(mode, modes.ECB):
        if caller is not None:
            _emit_once(session, ECB_MODE, f"{name} in ECB mode ({operation}or)", caller)
        return
    if operation != "encrypt":
        return  # decrypting the same record twice reuses its IV legitimately
    _note_encryption(session)
    iv = _as_bytes(getattr(mode, "initialization_vector", None) or getattr(mode, "nonce", None))
    key = _as_bytes(getattr(algorithm, "key", None))
    if iv is None or key is None or caller is None:
        return
    if _remember_pair(session, b"cipher", (getattr(mode, "name", "") or "").encode(), key, iv):
        kind = NONCE_REUSE if getattr(mode, "name", "") == "GCM" else STATIC_IV
        _emit_once(session, kind, f"{name}-{getattr(mode, 'name', '?')} encryptor reused an IV with the same "
                                  f"key ({len(iv) * 8}-bit IV; values not recorded)", caller)


def _on_rsa(session: SensorSession, key_size: Any, frame: FrameType | None) -> None:
    caller = _app_caller(session, frame)
    if caller is not None and isinstance(key_size, int) and key_size < MIN_RSA_BITS:
        _emit_once(session, SMALL_RSA, f"rsa.generate_private_key(key_size={key_size}) (< {MIN_RSA_BITS})",
                   caller)


def _install_cryptography() -> None:
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.ciphers import Cipher, aead
    except ImportError:
        return
    for cls_name in _AEAD_CLASSES:
        cls = getattr(aead, cls_name, None)
        if cls is not None:
            _wrap_aead(cls)
    for operation in ("encrypt", "decrypt"):
        original = getattr(Cipher, operation + "or")
        setattr(Cipher, operation + "or", _wrap_cipher(operation, original))
    generate = rsa.generate_private_key

    def generate_private_key(*args: Any, **kwargs: Any) -> Any:
        session = _active()
        if session is not None:
            key_size = kwargs.get("key_size", args[1] if len(args) > 1 else None)
            _sensing(_on_rsa, session, key_size, sys._getframe(1))
        return generate(*args, **kwargs)

    generate_private_key.__wrapped__ = generate  # type: ignore[attr-defined]
    rsa.generate_private_key = generate_private_key  # type: ignore[assignment]


def _wrap_cipher(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any) -> Any:
        session = _active()
        if session is not None:
            _sensing(_on_cipher, session, self, operation, sys._getframe(1))
        return original(self)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    method.__name__ = operation + "or"
    return method
