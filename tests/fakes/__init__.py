"""Local fakes of the cloud and GitHub APIs, each a real HTTP server on 127.0.0.1 answering from
seeded in-memory data (never a mock of our code): ``github`` (GitHub REST), ``google`` (the
Google REST APIs bootstrap and preflight call), ``aws`` (the AWS calls moto does not answer)."""
