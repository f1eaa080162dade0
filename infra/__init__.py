"""The command-line tooling (``infra ...``) over the environments and the synthesized output."""
