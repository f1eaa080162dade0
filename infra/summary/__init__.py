"""``infra summary``: what each synthesized stack holds (resources, clusters, GPU capacity, endpoints)."""
