"""The shared floor every verb stands on: the one reader of ``cdktf.out`` (stacks, resources, the
synth hash, JSON paths, the GPU-pool view, the secret detector). Nothing here imports a verb."""
