"""The local encryption key and AES-256-GCM sealing for the cache and the vault.

The key is 32 random bytes in ``<state>/key`` (0600, created atomically on first
use) or, with ``settings.key_store = "keyring"``, in the OS keyring. A key file
readable by others is refused with a message that says how to fix it.
"""

import os

from .cachehit import KEY_SIZE, NONCE_SIZE, aesgcm_class
from .cachehit import unseal as unseal  # opening lives with the cache hit, which needs it without os
from .paths import ensure_dir, private_file_problem

KEYRING_SERVICE = "gw"
KEYRING_USER = "cache-key"


def aesgcm(key: bytes):  # -> cryptography AESGCM  # noqa: ANN201
    """AESGCM from ``cryptography``'s compiled binding (:func:`gw.cachehit.aesgcm_class`)."""
    return aesgcm_class()(key)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (and ``aad``); returns nonce || ciphertext."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + aesgcm(key).encrypt(nonce, plaintext, aad)


def _refuse(message: str) -> Exception:
    from .errors import (
        CacheError,  # imported only on failure: the cache-hit path never needs it
    )

    return CacheError(message)


def read_key_file(path: str) -> bytes | None:
    """The key in ``path``; None if missing. Raises CacheError if unsafe or damaged.

    Never blocks (a FIFO at the path is refused) and never follows a symlink.
    """
    from .paths import UnsafePath, open_regular

    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _refuse(f"cannot read the key file {path}: {exc.strerror}") from None
    except UnsafePath as exc:
        raise _refuse(f"refusing to use the encryption key: {exc}") from None
    try:
        problem = private_file_problem(path, os.fstat(fd))
        if problem:
            raise _refuse(f"refusing to use the encryption key: {problem}")
        key = os.read(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_SIZE:
        raise _refuse(
            f"the key file {path} is damaged; remove it to start over "
            "(the cache and the vault encrypted with it become unreadable)"
        )
    return key


def _create_key_file(path: str) -> bytes:
    """Create the key atomically (complete or absent, never partial); no temp file survives a failure."""
    directory = ensure_dir(os.path.dirname(path))
    from .paths import clean_stale_temps

    clean_stale_temps(directory)
    key = os.urandom(KEY_SIZE)
    tmp = f"{path}.{os.getpid()}.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            if os.write(fd, key) != KEY_SIZE:
                raise OSError(28, "No space left on device")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic "create if absent" with the full content
        except FileExistsError:
            key = read_key_file(path) or key
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return key


def load_key(state_dir: str, store: str = "file", *, create: bool = True) -> bytes | None:
    """The cache/vault key from the configured store, created on first use when ``create``."""
    if store == "keyring":
        return _keyring_key(create)
    from .paths import check_dir

    problem = check_dir(state_dir)
    if problem:
        raise _refuse(f"refusing to use the state directory: {problem}")
    path = os.path.join(state_dir, "key")
    key = read_key_file(path)
    if key is None and create:
        try:
            key = _create_key_file(path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise _refuse(f"cannot create the key file {path}: {reason}") from None
    return key


def _keyring_key(create: bool) -> bytes | None:
    import base64

    from .errors import CacheError

    try:
        import keyring
    except ImportError:
        raise CacheError(
            'settings.key_store = "keyring" needs the keyring package: pip install "gw-credential-gateway[keyring]"'
        ) from None
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
        if stored:
            key = base64.b64decode(stored)
            if len(key) == KEY_SIZE:
                return key
            raise CacheError("the key in the OS keyring is damaged; delete the 'gw' entry to start over")
        if not create:
            return None
        key = os.urandom(KEY_SIZE)
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, base64.b64encode(key).decode())
        return key
    except CacheError:
        raise
    except Exception as exc:
        raise CacheError(f"the OS keyring failed: {type(exc).__name__}") from None
