"""A real keyring backend for the tests: keyring's own API, stored in a JSON file.

Selected with PYTHON_KEYRING_BACKEND=gw_test_keyring.FileKeyring; the file is
named by GW_TEST_KEYRING_FILE.
"""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _load(self) -> dict:
        try:
            with open(os.environ["GW_TEST_KEYRING_FILE"]) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        with open(os.environ["GW_TEST_KEYRING_FILE"], "w") as f:
            json.dump(data, f)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}", None)
        with open(os.environ["GW_TEST_KEYRING_FILE"], "w") as f:
            json.dump(data, f)
