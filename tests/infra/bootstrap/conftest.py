"""Fixtures of the bootstrap tests: boto3 on the session's moto server with credentials of the
environment's account (moto maps an access key to the account it was created in)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from environments.schema import Environment
from tests.fakes.aws import moto_credentials


@pytest.fixture
def as_account(aws: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``as_account("222222222222")``: boto3 from now on calls moto as that account."""

    import boto3

    def use(account_id: str) -> None:
        key, secret = moto_credentials(aws, account_id)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        # boto3's default session keeps the credentials it resolved first: start a new one
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    return use


@pytest.fixture
def staging(environments: dict[str, Environment], as_account: Callable[[str], None]) -> Environment:
    env = environments["staging"]
    assert env.aws is not None
    as_account(env.aws.account_id)
    return env
