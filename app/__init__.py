"""The model-serving application the environments run.

A wine-cultivar classifier trained on the dataset bundled with scikit-learn (``pipeline``), served
over HTTP (``service``) and from AWS Lambda through the same app (``lambda_handler``), packaged by
``Dockerfile`` and run on Kubernetes by the manifests ``k8s`` renders.
"""
