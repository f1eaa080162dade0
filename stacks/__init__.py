"""cdktf constructs and stacks. Importing this package prepares the runtime (see ``_bindings``)."""

from stacks import _bindings  # noqa: F401  (must run before any cdktf or provider import)
