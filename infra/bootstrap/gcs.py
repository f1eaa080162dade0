"""The GCS state bucket: versioning, uniform bucket-level access, public access prevention.
google-cloud-storage honours ``STORAGE_EMULATOR_HOST`` (the tests point it at the GCS emulator)."""

from __future__ import annotations

from environments.schema import Environment
from infra.bootstrap.result import BootstrapRefused, Result


def gcs_state(env: Environment, result: Result) -> None:
    import google.cloud.storage as storage
    from google.api_core import exceptions

    assert env.gcp is not None, "a gcs backend needs the gcp section (the loader checks this)"
    client = storage.Client(project=env.gcp.project_id)
    what = f"gs://{env.state.bucket}"
    created = False
    try:
        bucket = client.get_bucket(env.state.bucket)
    except exceptions.NotFound:
        bucket = client.bucket(env.state.bucket)
        bucket.versioning_enabled = True
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = "enforced"
        bucket.labels = dict(env.all_tags)
        client.create_bucket(bucket, location=env.gcp.region)
        result.add(what, "created", env.gcp.region)
        created = True
        bucket = client.get_bucket(env.state.bucket)  # read back: what the service kept is what counts
    else:
        if bucket.location and bucket.location.lower() != env.gcp.region.lower():
            raise BootstrapRefused(f"state bucket {what} is in {bucket.location}, not {env.gcp.region}; choose another state.bucket")
    changed = []
    if not bucket.versioning_enabled:
        bucket.versioning_enabled = True
        changed.append("versioning")
    if not bucket.iam_configuration.uniform_bucket_level_access_enabled:
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        changed.append("uniform bucket-level access")
    if bucket.iam_configuration.public_access_prevention != "enforced":
        bucket.iam_configuration.public_access_prevention = "enforced"
        changed.append("public access prevention")
    if changed:
        bucket.patch()
        result.add(f"{what} settings", "updated", ", ".join(changed))
    elif not created:
        result.add(what, "unchanged")
