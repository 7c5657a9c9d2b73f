"""The terraform in infra/ agrees with the code: functions, queues, schedules, settings, secrets,
Firestore indexes. Read with python-hcl2 (no terraform binary, no cloud account)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from sapa.settings import Settings
from tests.infra.conftest import INFRA, QUEUES_JSON, ROOT, Terraform, load_tf

# Read by the platform, not by SAPA's settings: gunicorn (the WSGI server functions-framework
# runs) takes SCRIPT_NAME as the path prefix the load balancer routes to the function.
PLATFORM_ENV = {"SCRIPT_NAME"}
PUBLIC = {"wa_webhook", "guestbook", "verify", "esign_callback"}
BEHIND_IAP = {"staff", "approval"}
SCHEDULED = {"sla_sweep", "retention_sweep"}


def _main() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_sapa_functions_main", ROOT / "functions/main.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENTRY_POINTS: dict[str, tuple[str, str]] = _main().ENTRY_POINTS


def _settings_env_names() -> dict[str, Any]:
    return {name.upper(): f for name, f in Settings.model_fields.items()}


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings exactly as a function instance builds them from its environment."""
    for name in _settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _instance_env(tf: Terraform, entry_point: str, drop: str = "") -> dict[str, str]:
    env = tf.function_env(entry_point)
    env.update({s: f"value-of-{s.lower()}" for s in tf.function_secrets(entry_point)})
    env.pop(drop, None)
    return env


# ---- parsing -------------------------------------------------------------------------------


def test_every_tf_file_parses_and_the_placeholder_is_gone() -> None:
    files = sorted(INFRA.glob("*.tf"))
    assert len(files) > 5
    for path in files:
        assert load_tf(path), f"{path.name} is empty"
    assert not (INFRA / "main.tf").exists() or "Empty root" not in (INFRA / "main.tf").read_text()


def test_the_example_tfvars_sets_every_variable_without_a_default(tf: Terraform) -> None:
    required = {n for n, v in tf.variables.items() if "default" not in v}
    assert required <= set(tf.tfvars), f"missing in terraform.tfvars.example: {required}"
    assert set(tf.tfvars) <= set(tf.variables), "tfvars example sets unknown variables"


def test_region_defaults_to_jakarta(tf: Terraform) -> None:
    assert tf.variables["region"]["default"] == "asia-southeast2"


# ---- functions -----------------------------------------------------------------------------


def test_every_entry_point_is_deployed_and_nothing_else(tf: Terraform) -> None:
    assert set(tf.functions) == set(ENTRY_POINTS)
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    assert fn["for_each"] == "${local.functions}"
    assert fn["build_config"][0]["entry_point"] == "${each.key}"
    assert fn["name"] == "${local.function_name[each.key]}"
    assert tf.locals["function_name"] == (
        '${{for k in keys(local.functions) : k => "${var.prefix}${replace(k, "_", "-")}"}}'
    )
    others = [r for (t, r) in tf.resources if t.startswith("google_cloudfunctions")]
    assert others == ["fn"], "only the one for_each resource deploys functions"


def test_functions_come_from_the_one_bundle(tf: Terraform) -> None:
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    source = fn["build_config"][0]["source"][0]["storage_source"][0]
    assert source["object"] == "${google_storage_bucket_object.bundle.name}"
    bundle = tf.resource("google_storage_bucket_object", "bundle")
    assert "filemd5(local.bundle_path)" in bundle["name"]
    assert tf.locals["bundle_path"].endswith('"${path.module}/../dist/sapa-functions.zip"}')


def test_runtime_matches_the_python_the_lock_was_made_with(tf: Terraform) -> None:
    import sys

    assert tf.var("runtime") == f"python{sys.version_info.major}{sys.version_info.minor}"


def test_access_public_iap_and_tasks(tf: Terraform) -> None:
    access = {k: f["access"] for k, f in tf.functions.items()}
    assert {k for k, a in access.items() if a == "public"} == PUBLIC
    assert {k for k, a in access.items() if a == "iap"} == BEHIND_IAP
    tasks = {k for k, a in access.items() if a == "tasks"}
    assert tasks == set(tf.queues) | SCHEDULED
    fn = tf.resource("google_cloudfunctions2_function", "fn")["service_config"][0]
    assert fn["ingress_settings"] == (
        '${each.value.access == "tasks" ? var.task_functions_ingress : "ALLOW_INTERNAL_AND_GCLB"}'
    )
    assert tf.var("task_functions_ingress") == "ALLOW_INTERNAL_ONLY"
    invoker = tf.locals["invoker_grants"]
    assert '"public" ? "allUsers"' in invoker
    assert '"iap" ? "serviceAccount:${google_project_service_identity.iap.email}"' in invoker
    assert invoker.endswith(': "serviceAccount:${google_service_account.tasks_invoker.email}")}}')


def test_load_balancer_paths_are_the_local_servers(tf: Terraform) -> None:
    from sapa.dev.localserver import HTTP_MOUNTS

    local_paths = {name: path for path, name in HTTP_MOUNTS.items() if name not in SCHEDULED}
    paths = {k: f["path"] for k, f in tf.functions.items() if f["access"] != "tasks"}
    assert paths == local_paths
    assert all(not f["path"] for f in tf.functions.values() if f["access"] == "tasks")
    # Functions that route by the path below their prefix get it stripped (SCRIPT_NAME); the
    # webhook and the callback answer on their exact URL, which would become an empty path.
    strip = {k for k, f in tf.functions.items() if f["strip_prefix"]}
    assert strip == {"guestbook", "verify", "staff", "approval"}


def test_only_the_webhook_stays_warm(tf: Terraform) -> None:
    warm = {k for k, f in tf.functions.items() if f["min_instances"] > 0}
    assert warm == {"wa_webhook"}


def test_concurrency_above_one_has_a_whole_cpu(tf: Terraform) -> None:
    for k, f in tf.functions.items():
        if f["concurrency"] > 1:
            assert float(f["cpu"]) >= 1, k


def test_sweeps_never_run_twice_at_once(tf: Terraform) -> None:
    for k in SCHEDULED:
        assert tf.functions[k]["max_instances"] == 1
        assert tf.functions[k]["concurrency"] == 1


# ---- queues --------------------------------------------------------------------------------


def _task_functions() -> set[str]:
    """Entry points whose function is decorated with `task_function` (queue-triggered)."""
    found = set()
    for path in sorted((ROOT / "functions").glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(target, ast.Name) and target.id == "task_function":
                    found |= {
                        name
                        for name, (module, attr) in ENTRY_POINTS.items()
                        if (module, attr) == (path.stem, node.name)
                    }
    return found


def _enqueued_kinds() -> set[str]:
    """Kinds in `Task("<kind>", ...)` and `outbox_task(case, "<kind>", ...)` in shared/sapa."""
    kinds: set[str] = set()
    positions = {"Task": 0, "outbox_task": 1}
    for path in sorted((ROOT / "shared" / "sapa").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name not in positions:
                continue
            arg: ast.expr | None = None
            if len(node.args) > positions[name]:
                arg = node.args[positions[name]]
            for kw in node.keywords:
                if kw.arg == "kind":
                    arg = kw.value
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                kinds.add(arg.value)
    return kinds


def test_queues_json_lists_exactly_the_task_functions() -> None:
    task_functions = _task_functions()
    assert task_functions, "found no @task_function in functions/"
    queues = json.loads(QUEUES_JSON.read_text("utf-8"))["queues"]
    assert set(queues) == task_functions


def test_every_kind_the_code_enqueues_has_a_queue() -> None:
    kinds = _enqueued_kinds()
    assert {"notify", "media_store", "esign_request"} <= kinds, "the scan finds the calls"
    queues = json.loads(QUEUES_JSON.read_text("utf-8"))["queues"]
    assert kinds <= set(queues), f"enqueued without a queue: {kinds - set(queues)}"


def test_every_queue_comes_from_queues_json(tf: Terraform) -> None:
    queue = tf.resource("google_cloud_tasks_queue", "queue")
    assert queue["for_each"] == "${local.queues}"
    assert queue["name"] == '${var.prefix}${replace(each.key, "_", "-")}'
    retry = queue["retry_config"][0]
    assert retry["max_attempts"] == "${each.value.max_attempts}"
    assert retry["min_backoff"] == "${each.value.min_backoff_seconds}s"
    assert retry["max_backoff"] == "${each.value.max_backoff_seconds}s"
    rates = queue["rate_limits"][0]
    assert rates["max_dispatches_per_second"] == "${each.value.max_dispatches_per_second}"
    assert rates["max_concurrent_dispatches"] == "${each.value.max_concurrent_dispatches}"
    assert set(tf.queues) == set(json.loads(QUEUES_JSON.read_text("utf-8"))["queues"])


def test_queue_ids_are_the_adapters(tf: Terraform) -> None:
    from sapa.adapters.cloud.cloud_tasks import queue_id

    for kind in tf.queues:
        assert queue_id(tf.var("prefix"), kind) == tf.function_name(kind)


def test_task_functions_outlive_their_dispatch_deadline(tf: Terraform) -> None:
    for kind, q in tf.queues.items():
        assert tf.functions[kind]["timeout"] > q["timeout_seconds"], kind


def test_task_functions_know_their_queues_last_attempt(tf: Terraform) -> None:
    assert (
        "TASK_MAX_ATTEMPTS = tostring(local.queues[k].max_attempts)" in (tf.locals["function_env"])
    )
    for kind, q in tf.queues.items():
        assert tf.function_env(kind)["TASK_MAX_ATTEMPTS"] == str(q["max_attempts"])


def test_functions_that_change_cases_may_enqueue_every_kind(tf: Terraform) -> None:
    grants = tf.locals["enqueue_grants"]
    assert "setproduct(local.enqueuers, keys(local.queues))" in grants
    assert {k for k, f in tf.functions.items() if not f["enqueues"]} <= {"verify"}
    act_as = tf.resource("google_service_account_iam_member", "act_as_invoker")
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    assert act_as["service_account_id"] == "${google_service_account.tasks_invoker.name}"


# ---- scheduler -----------------------------------------------------------------------------


def test_scheduled_jobs_call_with_the_invokers_oidc_token(
    tf: Terraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(tf.locals["scheduled_jobs"]) == SCHEDULED
    assert tf.locals["scheduled_jobs"]["sla_sweep"]["schedule"] == "*/5 * * * *"
    job = tf.resource("google_cloud_scheduler_job", "job")
    assert job["time_zone"] == "Asia/Makassar"
    target = job["http_target"][0]
    assert target["http_method"] == "POST"
    oidc = target["oidc_token"][0]
    assert oidc["service_account_email"] == "${google_service_account.tasks_invoker.email}"
    assert target["uri"] == oidc["audience"] == "${local.function_url[each.key]}"
    # The audience must be what the function checks: settings.task_url(<entry point>).
    host = tf.value(tf.locals["functions_host"])
    settings = _settings(monkeypatch, _instance_env(tf, "sla_sweep"))
    for k in SCHEDULED:
        assert settings.task_url(k) == f"{host}/{tf.function_name(k)}"
    assert tf.locals["function_url"] == (
        "${{for k in keys(local.functions) : k => "
        '"${local.functions_host}/${local.function_name[k]}"}}'
    )


# ---- settings and secrets ------------------------------------------------------------------


def test_the_for_expression_still_says_what_the_tests_restate(tf: Terraform) -> None:
    expr = tf.locals["function_env"]
    for part in (
        "tomap(merge(local.common_env,",
        "{IAP_AUDIENCE = local.iap_audience[k]}",
        "f.strip_prefix ? {SCRIPT_NAME = f.path}",
        "f.signer ? local.signer_env",
        "f.staff ? local.staff_env",
    ):
        assert part in expr, part
    assert tf.locals["function_secrets"] == (
        "${{for k, f in local.functions : k => tolist(concat(local.common_secrets, "
        "f.signer ? local.bsre_secrets : []))}}"
    )
    fn = tf.resource("google_cloudfunctions2_function", "fn")["service_config"][0]
    assert fn["environment_variables"] == "${local.function_env[each.key]}"
    secret_env = fn["dynamic"][0]["secret_environment_variables"]
    assert secret_env["for_each"] == "${toset(local.function_secrets[each.key])}"


def test_every_variable_set_is_a_setting(tf: Terraform) -> None:
    fields = _settings_env_names()
    for k in tf.functions:
        unknown = set(tf.function_env(k)) - set(fields) - PLATFORM_ENV
        assert not unknown, f"{k}: not settings: {unknown}"
        assert not set(tf.function_secrets(k)) - set(fields), k


def test_secrets_only_as_secret_variables(tf: Terraform) -> None:
    fields = _settings_env_names()
    secret_fields = {n for n, f in fields.items() if f.repr is False}
    for k in tf.functions:
        assert not secret_fields & set(tf.function_env(k)), f"{k}: a secret in plain env"
        assert set(tf.function_secrets(k)) <= secret_fields, k


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_each_function_builds_valid_cloud_settings(
    tf: Terraform, entry_point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch, _instance_env(tf, entry_point))
    assert settings.sapa_env == "cloud"
    assert settings.dev_login is False
    assert settings.store == "firestore" and settings.blobs == "gcs"
    assert settings.queue == "cloudtasks"
    assert settings.wa_phone_numbers == tf.var("wa_phone_numbers")
    assert settings.public_base_url == f"https://{tf.var('domain')}"


def test_every_secret_a_function_gets_is_one_settings_demand(
    tf: Terraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Least privilege: take any one secret away from any function and its settings refuse
    to load, so no function holds a secret it could do without."""
    for k in tf.functions:
        for secret in tf.function_secrets(k):
            with pytest.raises(ValidationError):
                _settings(monkeypatch, _instance_env(tf, k, drop=secret))


def test_bsre_account_only_where_the_signer_is_decided(tf: Terraform) -> None:
    holders = {k for k in tf.functions if "BSRE_PASSWORD" in tf.function_secrets(k)}
    assert holders == {"staff", "esign_request"}


def test_office_files_are_read_where_the_bundle_puts_them(tf: Terraform) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import bundle

    # Cloud Functions unpacks the source bundle into /workspace.
    assert tf.locals["staff_env"] == {"STAFF_FILE": f"/workspace/{bundle.STAFF_NAME}"}
    ca = f'{{BSRE_CA_BUNDLE = "/workspace/{bundle.BSRE_CA_NAME}"}}'
    assert f"var.bsre_ca_in_bundle ? {ca}" in tf.locals["signer_env"]


def test_every_secret_declared_is_used_and_vice_versa(tf: Terraform) -> None:
    used = set().union(*(tf.function_secrets(k) for k in tf.functions))
    assert used == tf.secret_names
    secret = tf.resource("google_secret_manager_secret", "secret")
    assert secret["for_each"] == "${local.secret_names}"
    assert tf.locals["secret_names"] == (
        "${toset(concat(local.common_secrets, local.bsre_secrets))}"
    )
    grant = tf.resource("google_secret_manager_secret_iam_member", "access")
    assert grant["for_each"] == "${local.secret_grants}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"


def test_no_secret_value_in_terraform() -> None:
    text = "\n".join(p.read_text("utf-8") for p in INFRA.glob("*.tf"))
    assert "google_secret_manager_secret_version" not in text
    assert "secret_data" not in text


def test_iap_audience_is_the_backend_services(tf: Terraform) -> None:
    audience = tf.locals["iap_audience"]
    assert "/projects/${data.google_project.this.number}/global/backendServices/" in audience
    assert "${google_compute_backend_service.fn[k].generated_id}" in audience
    backend = tf.resource("google_compute_backend_service", "fn")
    iap = backend["dynamic"][0]["iap"]
    assert iap["for_each"] == '${each.value.access == "iap" ? [1] : []}'


# ---- data ----------------------------------------------------------------------------------


def _documented_indexes() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    from sapa.adapters.cloud import firestore_store

    doc = inspect.getdoc(firestore_store) or ""
    after = doc.split("Composite indexes", 1)[1].split(":", 1)[1]
    listed = re.split(r"\.\s*\n", after, maxsplit=1)[0]
    out = set()
    for collection, fields in re.findall(r"(\w+) \(([^)]*)\)", listed):
        parsed = []
        for f in fields.split(","):
            name, *order = f.split()
            parsed.append((name, "DESCENDING" if order == ["DESC"] else "ASCENDING"))
        out.add((collection, tuple(parsed)))
    return out


def test_firestore_indexes_are_the_ones_the_adapter_documents(tf: Terraform) -> None:
    documented = _documented_indexes()
    assert len(documented) >= 6
    declared = {
        (i["collection"], tuple((f, o) for f, o in i["fields"]))
        for i in tf.locals["firestore_indexes"].values()
    }
    assert declared == documented


def test_firestore_is_native_in_region_with_backups(tf: Terraform) -> None:
    db = tf.resource("google_firestore_database", "db")
    assert db["type"] == "FIRESTORE_NATIVE"
    assert db["location_id"] == "${var.region}"
    assert db["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    daily = tf.resource("google_firestore_backup_schedule", "daily")
    assert "daily_recurrence" in daily


def test_buckets_are_private_versioned_and_regional(tf: Terraform) -> None:
    for name in ("data", "source"):
        b = tf.resource("google_storage_bucket", name)
        assert b["uniform_bucket_level_access"] is True
        assert b["public_access_prevention"] == "enforced"
        assert b["versioning"][0]["enabled"] is True
        assert b["location"] == "${var.region}"
        assert "encryption" in b["dynamic"][0], "CMEK through var.kms_key_name"


def test_storage_roles_are_object_roles_on_the_data_bucket(tf: Terraform) -> None:
    allowed = {
        "roles/storage.objectViewer",
        "roles/storage.objectCreator",
        "roles/storage.objectUser",
    }
    for k, f in tf.functions.items():
        assert set(f["storage"]) <= allowed, k
    assert not tf.functions["wa_webhook"]["storage"]
    assert tf.functions["retention_sweep"]["storage"] == ["roles/storage.objectUser"]
    grant = tf.resource("google_storage_bucket_iam_member", "fn")
    assert grant["bucket"] == "${google_storage_bucket.data.name}"


# ---- what apply needs in place first -------------------------------------------------------


def test_the_build_account_may_read_the_source_where_the_build_reads_it(tf: Terraform) -> None:
    """Cloud Functions stages the bundle in its own gcf-v2-sources-* bucket and the build reads
    it there: objectViewer on those buckets, with the condition Google's documentation gives
    (functions/docs/building), on nothing else of the project's storage."""
    staged = tf.resource("google_project_iam_member", "build_staged_source")
    assert staged["role"] == "roles/storage.objectViewer"
    assert staged["member"] == "serviceAccount:${google_service_account.build.email}"
    expression = " ".join(staged["condition"][0]["expression"].split())
    assert 'resource.type == "storage.googleapis.com/Object" && (' in expression
    prefixes = re.findall(
        r'resource\.name\.startsWith\("projects/_/buckets/([\w-]+)"\)', expression
    )
    assert sorted(prefixes) == ["gcf-v2-sources-", "gcf-v2-uploads-", "run-sources-"]
    assert expression.count("||") == 2 and "&&" in expression
    source = tf.resource("google_storage_bucket_iam_member", "build_source")
    assert source["bucket"] == "${google_storage_bucket.source.name}"


def test_functions_are_built_only_once_the_build_account_holds_its_roles(tf: Terraform) -> None:
    depends = tf.resource("google_cloudfunctions2_function", "fn")["depends_on"]
    for grant in (
        "google_project_iam_member.build",
        "google_project_iam_member.build_staged_source",
        "google_storage_bucket_iam_member.build_source",
        "google_secret_manager_secret_iam_member.access",
        "google_project_service.api",
    ):
        assert "${" + grant + "}" in depends, grant
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    assert fn["build_config"][0]["service_account"] == "${google_service_account.build.id}"


def test_service_agents_are_made_after_their_apis_are_enabled(tf: Terraform) -> None:
    apis = set(tf.files["versions.tf"]["locals"][0]["apis"])
    for name in ("iap", "secretmanager"):
        identity = tf.resource("google_project_service_identity", name)
        assert identity["provider"] == "google-beta"
        assert identity["service"] in apis, name
        assert "${google_project_service.api}" in identity["depends_on"], name


def test_with_cmek_the_service_agents_may_use_the_key_before_they_need_it(tf: Terraform) -> None:
    """kms_key_name encrypts the secrets and the buckets; Secret Manager and Cloud Storage use
    the key as their service agents, which must hold encrypter/decrypter on it first."""
    agents = {
        "secretmanager": "${google_project_service_identity.secretmanager[0].email}",
        "storage": "${data.google_storage_project_service_account.this[0].email_address}",
    }
    cmek_only = '${var.kms_key_name != "" ? 1 : 0}'
    for name, email in agents.items():
        grant = tf.resource("google_kms_crypto_key_iam_member", name)
        assert grant["count"] == cmek_only
        assert grant["crypto_key_id"] == "${var.kms_key_name}"
        assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant["member"] == f"serviceAccount:{email}"
    assert tf.resource("google_project_service_identity", "secretmanager")["count"] == cmek_only
    secret = tf.resource("google_secret_manager_secret", "secret")
    assert "${google_kms_crypto_key_iam_member.secretmanager}" in secret["depends_on"]
    replica = secret["replication"][0]["user_managed"][0]["replicas"][0]
    assert replica["dynamic"][0]["customer_managed_encryption"]["for_each"] == (
        '${var.kms_key_name != "" ? [var.kms_key_name] : []}'
    )
    for bucket in ("data", "source"):
        depends = tf.resource("google_storage_bucket", bucket)["depends_on"]
        assert "${google_kms_crypto_key_iam_member.storage}" in depends, bucket


# ---- checkov suppressions ------------------------------------------------------------------


def test_every_checkov_suppression_says_why() -> None:
    for path in sorted(INFRA.glob("*.tf")):
        for line in path.read_text("utf-8").splitlines():
            if "checkov:skip" not in line:
                continue
            m = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.+)", line)
            assert m, f"{path.name}: malformed suppression {line.strip()!r}"
            assert len(m.group(2).split()) >= 6, f"{path.name}: {m.group(1)} needs a reason"


def test_repository_root_is_where_infra_expects_it() -> None:
    assert Path(INFRA / ".." / "shared" / "sapa" / "data" / "queues.json").resolve() == QUEUES_JSON
