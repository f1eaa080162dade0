"""User-error types and their exit codes, mapped once at the CLI edge."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_NEEDS_APPROVAL = 3  # `infra deploy`: what would be applied is not what was reviewed


class InfraError(Exception):
    """A user-facing error: printed without a traceback."""

    exit_code = EXIT_USAGE


class SynthError(InfraError):
    """Synthesis failed; the previous output is left as it was."""


class NotSynthesized(InfraError):
    """A command needs ``cdktf.out/`` and it is missing or incomplete."""


class TerraformError(InfraError):
    """The bundled Terraform engine reported an error."""

    exit_code = EXIT_FINDINGS
