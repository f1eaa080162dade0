"""The schema of an environment file: frozen pydantic models, unknown keys forbidden.

Every cross-field check raises :class:`FieldError`, which names the field it is about, so the
loader can print ``file:line: path.to.field: what is wrong; what would be right``. The sections
live in their own modules (:mod:`~environments.schema.types`, :mod:`~environments.schema.aws`,
:mod:`~environments.schema.gcp`, :mod:`~environments.schema.platform`); what an environment derives
from its identity in :mod:`~environments.schema.identity`; the whole file in
:mod:`~environments.schema.environment`. This module only names them, so ``from environments.schema
import Environment`` keeps working.
"""

from environments.schema.aws import (
    AwsConfig,
    AwsNetwork,
    EcrRepository,
    EksCluster,
    EksGpuNodeGroup,
    EksNodeGroup,
    LambdaEndpoint,
)
from environments.schema.environment import Environment
from environments.schema.gcp import (
    Accelerator,
    ArtifactRegistry,
    AuthorizedNetwork,
    BuildTrigger,
    GcpConfig,
    GcpNetwork,
    GkeCluster,
    GkeGpuNodePool,
    GkeNodePool,
)
from environments.schema.platform import (
    DERIVED_TAGS,
    REQUIRED_TAGS,
    Budget,
    Ci,
    ModelRegistry,
    Monitoring,
    Policy,
    PolicySkip,
    Replicas,
    Serving,
    StateBackend,
    Usage,
)
from environments.schema.types import Cloud, FieldError, ImageRef, Model, Taint

__all__ = [
    "DERIVED_TAGS",
    "REQUIRED_TAGS",
    "Accelerator",
    "ArtifactRegistry",
    "AuthorizedNetwork",
    "AwsConfig",
    "AwsNetwork",
    "Budget",
    "BuildTrigger",
    "Ci",
    "Cloud",
    "EcrRepository",
    "EksCluster",
    "EksGpuNodeGroup",
    "EksNodeGroup",
    "Environment",
    "FieldError",
    "GcpConfig",
    "GcpNetwork",
    "GkeCluster",
    "GkeGpuNodePool",
    "GkeNodePool",
    "ImageRef",
    "LambdaEndpoint",
    "Model",
    "ModelRegistry",
    "Monitoring",
    "Policy",
    "PolicySkip",
    "Replicas",
    "Serving",
    "StateBackend",
    "Taint",
    "Usage",
]
