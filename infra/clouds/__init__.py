"""Cloud client factories (boto3, the Google clients, the GitHub REST API), made one way each."""
