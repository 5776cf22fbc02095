"""Tests bind loopback only (issue 15.8): see loopback_only.py."""

import sys as _sys

# A process started with the guard's directory on PYTHONPATH (an xdist worker, say) has already
# installed it through sitecustomize as the top-level module ``loopback_only``: use that very module,
# so there is one hook and one record of violations, not two.
if "loopback_only" in _sys.modules:
    loopback_only = _sys.modules["loopback_only"]
    _sys.modules[__name__ + ".loopback_only"] = loopback_only
