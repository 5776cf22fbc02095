"""The cache-hit path of ``gw credential-process`` stays light, and unsafe key/vault files are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.core_helpers import parse_credential_process
from tests.core.gw_test_support import (
    GW,
    assert_clean_failure,
    cache_file,
    imported_modules,
    keys_from_env,
    role_profile,
    run_importtime,
)

FORBIDDEN = ("pluggy", "boto3", "botocore", "requests", "importlib.metadata", "tomllib", "argparse", "rich", "json",
             # gw's slow-path modules: a hit is gw.cachehit alone (issue 20.3)
             "gw.cli", "gw.fastpath", "gw.store", "gw.paths", "gw.crypto", "gw.app", "gw.config",
             # no HTTP library at all on a hit: a miss's HttpClient loads http.client (and email), ssl
             "http", "urllib3", "email", "ssl")


@pytest.fixture
def warm_home(aws_home, iam_user, moto):
    """A home whose profile ``role`` has a fresh cache entry."""
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile())
    first = aws_home.run("credential-process", "--profile", "role")
    assert first.returncode == 0, first.stderr
    aws_home.first_output = first.stdout
    return aws_home


def _forbidden(module: str) -> bool:
    return module.startswith(("gw_plugins", "gw_example_plugin")) or any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_a_cache_hit_imports_nothing_heavy(warm_home, moto):
    before = moto.count("AssumeRole")
    hit = run_importtime(warm_home, "credential-process", "--profile", "role")
    assert hit.returncode == 0
    assert hit.stdout == warm_home.first_output
    parse_credential_process(hit.stdout)
    assert moto.count("AssumeRole") == before
    modules = imported_modules(hit.stderr)
    assert {"gw", "gw.cachehit"} <= modules  # the import log was read correctly
    assert sorted(m for m in modules if _forbidden(m)) == []
    other = [line for line in hit.stderr.splitlines() if not line.startswith("import time:")]
    assert other == []


def test_the_slow_path_does_import_them(warm_home):
    """Guards the test above: the same probe does see heavy imports when the cache cannot serve."""
    cache_file(warm_home, "role").unlink()
    miss = run_importtime(warm_home, "credential-process", "--profile", "role")
    assert miss.returncode == 0, miss.stderr
    modules = imported_modules(miss.stderr)
    assert {"pluggy", "tomllib", "json"} <= modules  # not argparse: a plain miss needs none (cli._plain_miss)
    # a plugin ran: -X importtime logs import statements only, not importlib's loading of the
    # entry point itself, so the aws plugin shows as what it imports (the public gw.plugin, its
    # STS module and botocore's signer)
    assert {"gw.plugin", "gw_plugins.aws.sts", "botocore.auth"} <= modules
    # STS without boto3 (issue 20, target 2): botocore signs, but no boto3 and no botocore client
    assert not {m for m in modules if m == "boto3" or m.startswith(("boto3.", "botocore.client", "botocore.session"))}
    assert any(_forbidden(m) for m in modules)
    # nor the command table and its parser helpers: only what credential-process prints
    assert "gw.commands.credential_output" in modules
    assert not {"argparse", "gw.commands.base", "gw.commands.credentials"} & modules


def test_a_world_readable_key_file_is_refused(warm_home):
    key = warm_home.state / "key"
    key.chmod(0o644)
    result = warm_home.run("credential-process", "--profile", "role")
    line = assert_clean_failure(result, contains="chmod 600")
    assert str(key) in line and "readable by others" in line
    assert result.returncode == 1
    # gw never loosens or fixes the mode itself
    assert key.stat().st_mode & 0o777 == 0o644


def test_a_world_readable_vault_is_refused(aws_home, iam_user):
    home = aws_home
    home.vault_set("akid", iam_user[0])
    home.vault_set("secret", iam_user[1])
    home.write_config(role_profile(keys="vault"))
    vault = home.state / "vault"
    vault.chmod(0o644)
    for args in (("vault", "list"), ("credential-process", "--profile", "role")):
        result = home.run(*args)
        line = assert_clean_failure(result, contains="chmod 600")
        assert "refusing to use the vault" in line and str(vault) in line
    assert iam_user[1] not in json.dumps([result.stdout, result.stderr])


# -- the launcher: isolated, without site, gw's own install location only (issue 20.3) -------------
def _regular_install(root: Path) -> tuple[Path, Path]:
    """A prefix laid out as a regular install: bin/gw (the launcher), bin/python3, and gw beside its
    dependencies in lib/pythonX.Y/site-packages (those of this venv). (python, gw) of it."""
    import cryptography

    import gw
    import gw_emulators
    import gw_plugins

    site_packages = root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    site_packages.mkdir(parents=True)
    for entry in Path(cryptography.__file__).parent.parent.iterdir():  # this venv's site-packages
        if not entry.name.endswith(".pth"):
            (site_packages / entry.name).symlink_to(entry)
    for package in (gw, gw_plugins, gw_emulators):  # the editable install's source trees
        (site_packages / package.__name__).symlink_to(Path(package.__file__).parent)
    (root / "bin").mkdir()
    python = root / "bin" / "python3"
    python.symlink_to(sys.executable)
    launcher = root / "bin" / "gw"
    shutil.copy2(GW, launcher)
    return python, launcher


def _sitecustomize(root: Path) -> tuple[Path, Path]:
    """A PYTHONPATH directory whose sitecustomize leaves a mark when any Python start-up reads it."""
    mark = root / "site-ran"
    path = root / "pythonpath"
    path.mkdir()
    (path / "sitecustomize.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    return path, mark


def test_the_launcher_serves_a_hit_without_site_pythonpath_or_user_site(warm_home, tmp_path):
    python, launcher = _regular_install(tmp_path / "prefix")
    pythonpath, mark = _sitecustomize(tmp_path)
    env = {**warm_home.env, "PYTHONPATH": str(pythonpath), "GW_NO_ISOLATION": ""}
    hit = subprocess.run([str(launcher), "credential-process", "--profile", "role"], env=env, capture_output=True,
                         timeout=60, stdin=subprocess.DEVNULL, cwd=warm_home.root)
    assert hit.returncode == 0, hit.stderr
    assert hit.stdout.decode() == warm_home.first_output and hit.stderr == b""
    assert not mark.exists()  # PYTHONPATH (and so its sitecustomize) never reached gw
    # the same start-up the launcher execs, with the import log: no site, nothing heavy
    logged = subprocess.run([str(python), "-I", "-S", "-X", "importtime", str(launcher), "credential-process",
                             "--profile", "role"], env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, cwd=warm_home.root)
    assert logged.returncode == 0 and logged.stdout == warm_home.first_output
    modules = imported_modules(logged.stderr)
    assert "gw.cachehit" in modules
    assert "site" not in modules and sorted(m for m in modules if _forbidden(m)) == []


def _startup_modules(python: Path) -> set[str]:
    """What ``python -I -S`` imports before running anything."""
    bare = subprocess.run([str(python), "-I", "-S", "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                          timeout=60, check=True)
    return imported_modules(bare.stderr)


# The whole of what a hit imports beyond Python's own start-up: gw's package and gw.cachehit, the
# builtins the launcher uses, and what cryptography's compiled binding imports itself (the binding
# is loaded from gw's install location directly, so no `cryptography` package module shows).
HIT_MODULES = {"gc", "_signal", "gw", "gw.cachehit", "types", "_cffi_backend"}


def test_a_hit_through_the_launcher_imports_gw_cachehit_and_cryptographys_binding_only(warm_home, tmp_path):
    python, launcher = _regular_install(tmp_path / "prefix")
    logged = subprocess.run([str(python), "-I", "-S", "-X", "importtime", str(launcher), "credential-process",
                             "--profile", "role"], env=warm_home.env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, cwd=warm_home.root)
    assert logged.returncode == 0 and logged.stdout == warm_home.first_output, logged.stderr
    extra = imported_modules(logged.stderr) - _startup_modules(python)
    assert "gw.cachehit" in extra  # the log was read correctly
    assert extra <= HIT_MODULES, sorted(extra - HIT_MODULES)  # no os, json, re, tomllib, gw.store, gw.cli...


# Runs the launcher as its own shell line does (python -I -S), with an audit hook that reports every
# file Python opens ("open" events: os.open, io.open and the import system's reads of bytecode).
_AUDITED = """
import sys, posix
def hook(event, args):
    if event == "open" and isinstance(args[0], str):
        posix.write(2, ("opened " + args[0] + "\\n").encode())
launcher = sys.argv[1]
source = open(launcher).read()
sys.addaudithook(hook)
sys.argv = sys.argv[1:]
exec(compile(source, launcher, "exec"), {"__name__": "__main__"})
"""


def _opened(result: subprocess.CompletedProcess) -> list[str]:
    return [line[len("opened "):] for line in result.stderr.splitlines() if line.startswith("opened ")]


def test_a_hit_opens_the_entry_and_the_key_and_never_reads_the_config(warm_home, tmp_path):
    """The files a hit opens: its entry, the key, and the bytecode of gw, gw.cachehit and the one stdlib
    module cryptography's binding imports. The config file is only stat'ed (its stamp), never read."""
    python, launcher = _regular_install(tmp_path / "prefix")

    def audited(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-I", "-S", "-c", _AUDITED, str(launcher), *args], env=warm_home.env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=warm_home.root)

    audited("credential-process", "--profile", "role")  # bytecode written where it was missing
    hit = audited("credential-process", "--profile", "role")
    assert hit.returncode == 0 and hit.stdout == warm_home.first_output, hit.stderr
    opened = _opened(hit)
    data = [path for path in opened if not path.endswith(".pyc")]
    assert data == [str(cache_file(warm_home, "role")), str(warm_home.state / "key")]
    code = sorted(Path(path).name.split(".")[0] for path in opened if path.endswith(".pyc"))
    assert code == ["__init__", "cachehit", "types"], opened
    assert len(opened) <= 5
    # guards the probe: a miss opens (and parses) the config file
    cache_file(warm_home, "role").unlink()
    miss = audited("credential-process", "--profile", "role")
    assert miss.returncode == 0, miss.stderr
    assert str(warm_home.config_path) in _opened(miss)


def test_the_binding_a_hit_loaded_by_itself_looks_imported_once_the_hit_gives_up(tmp_path):
    """gw.cachehit loads cryptography's compiled module without its packages; when the cache then
    cannot serve, the ordinary path finds it as an ordinary import would have left it."""
    python, _ = _regular_install(tmp_path / "prefix")
    lib = str(python.parent.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages")
    probe = (f"import sys; sys.path.append({lib!r}); from gw import cachehit; cachehit.load_binding({lib!r}); "
             "assert 'cryptography' not in sys.modules; cachehit.settle_binding(); "
             "import cryptography.hazmat.bindings; "
             "binding = sys.modules['cryptography.hazmat.bindings._rust']; "
             "assert cryptography.hazmat.bindings._rust is binding; "
             "from cryptography.hazmat.primitives.ciphers.aead import AESGCM; "
             "assert AESGCM is binding.openssl.aead.AESGCM; print('ok')")
    result = subprocess.run([str(python), "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_a_damaged_entry_through_the_launcher_falls_back_to_the_ordinary_path(warm_home, tmp_path, moto):
    """The hit loaded cryptography's binding by itself and then could not decrypt: the ordinary path
    (site, plugins, cryptography's Python layers) still works in the same process and refetches."""
    python, launcher = _regular_install(tmp_path / "prefix")
    entry = cache_file(warm_home, "role")
    data = bytearray(entry.read_bytes())
    data[-1] ^= 1  # the GCM tag: the header still binds, the decryption fails
    entry.write_bytes(bytes(data))
    before = moto.count("AssumeRole")
    result = subprocess.run([str(launcher), "credential-process", "--profile", "role"],
                            env={**warm_home.env, "GW_NO_ISOLATION": ""}, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL, cwd=warm_home.root)
    assert result.returncode == 0, result.stderr
    parse_credential_process(result.stdout)
    assert result.stdout != warm_home.first_output and moto.count("AssumeRole") == before + 1


def test_the_launcher_brings_site_back_on_the_slow_path_of_an_editable_install(warm_home, tmp_path):
    """The development venv is an editable install: gw is found through site's .pth finder, and a
    cache miss loads plugins from their entry points; PYTHONPATH still stays out."""
    pythonpath, mark = _sitecustomize(tmp_path)
    env = {"PYTHONPATH": str(pythonpath), "GW_NO_ISOLATION": ""}
    hit = warm_home.run("credential-process", "--profile", "role", env=env)
    assert hit.returncode == 0 and hit.stdout == warm_home.first_output, hit.stderr
    cache_file(warm_home, "role").unlink()
    miss = warm_home.run("credential-process", "--profile", "role", env=env)
    assert miss.returncode == 0, miss.stderr
    parse_credential_process(miss.stdout)
    assert not mark.exists()
