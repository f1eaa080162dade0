"""`infra images`: which image the deploy builds, copies by digest, or expects, per environment."""

from __future__ import annotations

import json

import pytest

from environments.loader import EnvironmentFileError, Environments, load_environments
from infra.cli.app import main
from infra.images import image_pins


def test_the_first_environment_builds_its_tags_and_the_others_copy_from_their_source() -> None:
    envs = load_environments()
    dev = {(p.field, p.cloud): p for p in image_pins(envs["dev"], envs)}
    assert dev and all(p.action == "build" for p in dev.values())  # dev pins tags and promotes from none
    lam = dev[("aws.endpoints[0]", "aws")]
    assert lam.target == "lambda" and lam.ref == ":latest-dev-lambda"
    assert lam.repository == envs["dev"].image_repository("aws", "model-server")
    assert {p.target for f, p in dev.items() if f[0] == "serving"} == {"service"}

    for target, source in (("staging", "dev"), ("production", "staging")):
        for pin in image_pins(envs[target], envs):
            assert pin.action == "copy", (target, pin)
            # the same reference in the source environment's repository of the same registry
            registry = pin.repository.rsplit("/", 1)[-1].removeprefix(f"{envs[target].project}-{target}-")
            assert pin.copy_from.endswith(pin.ref)
            assert pin.copy_from.startswith(envs[source].image_repository(pin.cloud, registry)), pin  # type: ignore[arg-type]
            assert pin.repository != pin.copy_from.removesuffix(pin.ref)


def test_a_digest_pin_in_the_first_environment_must_already_be_there() -> None:
    envs = load_environments()
    serving = envs["dev"].serving
    assert serving is not None
    pinned = serving.model_copy(update={"image_tag": None, "image_digest": "sha256:" + "a" * 64})
    dev = envs["dev"].model_copy(update={"serving": pinned})
    changed = Environments([dev if e.name == "dev" else e for e in envs.values()], envs.files)
    pins = [p for p in image_pins(dev, changed) if p.field == "serving"]
    assert pins and all(p.action == "present" and p.ref == "@sha256:" + "a" * 64 for p in pins)


def test_promotion_from_an_environment_without_the_cloud_names_the_file_and_field() -> None:
    envs = load_environments()
    dev = envs["dev"].model_copy(update={"gcp": None})
    changed = Environments([dev if e.name == "dev" else e for e in envs.values()], envs.files)
    with pytest.raises(EnvironmentFileError) as err:
        image_pins(changed["staging"], changed)
    text = str(err.value)
    assert "staging.yaml" in text and "serving" in text and "no gcp registry" in text


def test_cli_json_lists_every_pin_with_the_image_to_push(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "staging", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["action"] for r in rows} == {"copy"}
    assert all(r["image"] == r["repository"] + r["ref"] for r in rows)
    assert main(["images", "nowhere"]) == 2
