# Every entry point of functions/main.py (ENTRY_POINTS) as a 2nd gen Cloud Function, all from
# the one bundle `make bundle` builds. tests/infra checks that this map and ENTRY_POINTS agree.
#
# access:  public  reached through the load balancer, anyone may call it (allUsers invoker)
#          iap     reached through the load balancer behind Identity-Aware Proxy
#          tasks   called only by Cloud Tasks / Cloud Scheduler with an OIDC token of the
#                  tasks-invoker service account (internal ingress)
# path:    the URL prefix the load balancer routes to the function (the local server's mounts).
# strip_prefix: the function routes by the path below its prefix (guest book, staff pages,
#          verification, approval): it gets the prefix as SCRIPT_NAME, which gunicorn strips,
#          exactly as the local server mounts it (links and redirects stay right). The webhook
#          and the callback answer on their one URL whatever the path, and must not: with
#          SCRIPT_NAME their exact URL would be an empty path, which Flask redirects (308).
# Sizing (Gowa: ~1,500 requests per working day, bursts at the counters' opening hours):
#   memory  512Mi where a request is JSON or a small page; 1Gi where photos are re-encoded
#           (Pillow) or PDFs/zips are built or signed in memory (10 MB uploads, a few at once).
#   cpu     1 vCPU wherever concurrency > 1 (Cloud Run requires it).
#   concurrency  requests per instance: I/O-bound handlers share an instance; the sweeps run one
#           at a time (max 1 instance) so two sweeps never race over the same cases.
#   timeout longer than the queue's dispatch deadline (queues.json timeout_seconds) for task
#           functions, so Cloud Tasks, not the platform, decides when an attempt failed.
#   min_instances  0 everywhere (scale to zero: nights and weekends cost nothing) except the
#           WhatsApp webhook: Meta retries a slow webhook and residents wait for the link, so one
#           warm instance (~US$ 10/month idle) keeps the first reply of the morning instant.
locals {
  queues      = jsondecode(file("${path.module}/../shared/sapa/data/queues.json")).queues
  bundle_path = var.bundle_path != "" ? var.bundle_path : "${path.module}/../dist/sapa-functions.zip"

  public_base_url = "https://${var.domain}"
  functions_host  = "https://${var.region}-${var.project_id}.cloudfunctions.net"
  # {name} = the entry point with '-' for '_' (settings.task_url); also the OIDC audience.
  task_url_template = "${local.functions_host}/${var.prefix}{name}"

  functions = {
    wa_webhook = {
      access    = "public", path = "/wa/webhook", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 40, timeout = 30, min_instances = 1, max_instances = 20
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = false
    }
    guestbook = {
      access    = "public", path = "/guestbook", strip_prefix = true
      memory    = "1Gi", cpu = "1", concurrency = 8, timeout = 60, min_instances = 0, max_instances = 10
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = false, staff = false
    }
    verify = {
      access = "public", path = "/verify", strip_prefix = true
      # Writes only its rate-limit counters; reads the signed document's record.
      memory    = "512Mi", cpu = "1", concurrency = 20, timeout = 30, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = [], enqueues = false, signer = false, staff = false
    }
    esign_callback = {
      access    = "public", path = "/esign/callback", strip_prefix = false
      memory    = "1Gi", cpu = "1", concurrency = 4, timeout = 60, min_instances = 0, max_instances = 3
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = false, staff = false
    }
    staff = {
      access = "iap", path = "/staff", strip_prefix = true
      # Reads the SIGNER setting to ask the head of office for the BSrE passphrase.
      memory    = "1Gi", cpu = "1", concurrency = 16, timeout = 120, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = true, staff = true
    }
    approval = {
      access    = "iap", path = "/approval", strip_prefix = true
      memory    = "512Mi", cpu = "1", concurrency = 16, timeout = 30, min_instances = 0, max_instances = 3
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = true
    }
    sla_sweep = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 1, timeout = 300, min_instances = 0, max_instances = 1
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = false
    }
    retention_sweep = {
      access = "tasks", path = "", strip_prefix = false
      # Deletes documents past their retention (objectUser: get, create, delete).
      memory    = "512Mi", cpu = "1", concurrency = 1, timeout = 540, min_instances = 0, max_instances = 1
      firestore = "roles/datastore.user", storage = ["roles/storage.objectUser"], enqueues = true, signer = false, staff = false
    }
    notify = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 20, timeout = 60, min_instances = 0, max_instances = 10
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = false
    }
    command = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 20, timeout = 60, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = false
    }
    media_store = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "1Gi", cpu = "1", concurrency = 4, timeout = 180, min_instances = 0, max_instances = 10
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = false, staff = false
    }
    precheck = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 10, timeout = 120, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = [], enqueues = true, signer = false, staff = false
    }
    siak_handoff = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "1Gi", cpu = "1", concurrency = 2, timeout = 180, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = false, staff = false
    }
    esign_request = {
      access = "tasks", path = "", strip_prefix = false
      # The only function that talks to BSrE (through the VPC connector when one is given).
      memory    = "1Gi", cpu = "1", concurrency = 2, timeout = 360, min_instances = 0, max_instances = 3
      firestore = "roles/datastore.user", storage = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
      enqueues  = true, signer = true, staff = false
    }
    deliver = {
      access    = "tasks", path = "", strip_prefix = false
      memory    = "512Mi", cpu = "1", concurrency = 10, timeout = 180, min_instances = 0, max_instances = 5
      firestore = "roles/datastore.user", storage = ["roles/storage.objectViewer"], enqueues = true, signer = false, staff = false
    }
  }

  function_name = { for k in keys(local.functions) : k => "${var.prefix}${replace(k, "_", "-")}" }
  function_url  = { for k in keys(local.functions) : k => "${local.functions_host}/${local.function_name[k]}" }

  # Settings every function needs (shared/sapa/settings.py; variable = field name upper-cased).
  common_env = {
    SAPA_ENV             = "cloud"
    SAPA_DATA_DIR        = "/tmp/sapa" # the only writable place in a function instance
    STORE                = "firestore"
    BLOBS                = "gcs"
    QUEUE                = "cloudtasks"
    GCP_PROJECT          = var.project_id
    GCS_BUCKET           = google_storage_bucket.data.name
    PUBLIC_BASE_URL      = local.public_base_url
    TASKS_LOCATION       = var.region
    TASKS_QUEUE_PREFIX   = var.prefix
    TASK_URL_TEMPLATE    = local.task_url_template
    TASK_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    DEV_LOGIN            = "false"
    # Settings demand an audience in the cloud; functions that are not behind IAP never read
    # it, they carry the staff workspace's.
    IAP_AUDIENCE     = local.iap_audience["staff"]
    WA_API_BASE      = var.wa_api_base
    WA_PHONE_NUMBERS = jsonencode(var.wa_phone_numbers)
    MAX_UPLOAD_MB    = tostring(var.max_upload_mb)
    # The HTTPS load balancer appends "<client>,<load balancer>" to X-Forwarded-For: the
    # client (rate limits, the access log's address hash) is the second entry from the end.
    # Check it once after the first deploy (a request's log line shows the header).
    TRUSTED_PROXY_HOPS = "2"
  }

  # Where the TTE is decided (staff asks for the passphrase) or made (esign_request).
  signer_env = merge(
    { SIGNER = var.signer },
    var.signer == "bsre" ? { BSRE_BASE_URL = var.bsre_base_url, BSRE_API = var.bsre_api, BSRE_V1_BOX = var.bsre_v1_box } : {},
    var.bsre_ca_in_bundle ? { BSRE_CA_BUNDLE = "/workspace/bsre-ca.pem" } : {},
  )

  # The office's staff file, shipped in the bundle by `make bundle STAFF_FILE=...`; Cloud
  # Functions unpacks the bundle into /workspace.
  staff_env = { STAFF_FILE = "/workspace/staff.toml" }

  function_env = {
    for k, f in local.functions : k => tomap(merge(
      local.common_env,
      k == "staff" || k == "approval" ? { IAP_AUDIENCE = local.iap_audience[k] } : {},
      f.strip_prefix ? { SCRIPT_NAME = f.path } : {},
      f.signer ? local.signer_env : {},
      f.staff ? local.staff_env : {},
      # the task wrapper tells staff when the queue's last attempt failed
      contains(keys(local.queues), k) ? { TASK_MAX_ATTEMPTS = tostring(local.queues[k].max_attempts) } : {},
    ))
  }
}

resource "google_storage_bucket_object" "bundle" {
  # The object name carries the bundle's hash: a new bundle is a new object, and the functions
  # redeploy exactly when the source changed (the bundle is deterministic).
  name   = "sapa-functions-${filemd5(local.bundle_path)}.zip"
  bucket = google_storage_bucket.source.name
  source = local.bundle_path
}

resource "google_cloudfunctions2_function" "fn" {
  for_each    = local.functions
  name        = local.function_name[each.key]
  location    = var.region
  description = "SAPA ${var.office_name}: ${each.key}"
  labels      = { app = "sapa", access = each.value.access }

  build_config {
    runtime         = var.runtime
    entry_point     = each.key
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    # Public and staff functions only through the load balancer (IAP and the one domain);
    # task functions only from Cloud Tasks / Cloud Scheduler of this project.
    ingress_settings               = each.value.access == "tasks" ? var.task_functions_ingress : "ALLOW_INTERNAL_AND_GCLB"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.fn[each.key].email
    environment_variables          = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      for_each = toset(local.function_secrets[each.key])
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = lookup(var.secret_versions, secret_environment_variables.value, "latest")
      }
    }

    vpc_connector                 = each.key == "esign_request" && var.vpc_connector != "" ? var.vpc_connector : null
    vpc_connector_egress_settings = each.key == "esign_request" && var.vpc_connector != "" ? "PRIVATE_RANGES_ONLY" : null
  }

  lifecycle {
    precondition {
      condition     = var.signer != "bsre" || var.bsre_base_url != ""
      error_message = "signer = \"bsre\" needs bsre_base_url."
    }
  }

  # The build runs as the build account and fails without its grants; the instances start only
  # with their secrets readable.
  depends_on = [
    google_project_service.api,
    google_secret_manager_secret_iam_member.access,
    google_project_iam_member.build,
    google_project_iam_member.build_staged_source,
    google_storage_bucket_iam_member.build_source,
  ]
}
