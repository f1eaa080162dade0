"""The change model: what a change does to each resource, from an offline diff of two synth outputs
or from a real plan (``terraform show -json``), with the replacement table that predicts which
attribute changes destroy and re-create a resource. Read by review, plan/drift and deploy."""
