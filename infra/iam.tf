# One service account per function holding only what that function does, the tasks-invoker
# account that Cloud Tasks and Cloud Scheduler sign their OIDC tokens as, and the account Cloud
# Build uses to build the functions.

resource "google_service_account" "fn" {
  for_each     = local.functions
  account_id   = local.function_name[each.key]
  display_name = "SAPA function ${each.key}"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "tasks_invoker" {
  account_id   = "${var.prefix}tasks-invoker"
  display_name = "SAPA: Cloud Tasks and Cloud Scheduler calling the task functions"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "build" {
  account_id   = "${var.prefix}build"
  display_name = "SAPA: Cloud Build for the functions"
  depends_on   = [google_project_service.api]
}

locals {
  build_roles = [
    "roles/logging.logWriter",
    "roles/artifactregistry.writer", # the image of each function (gcf-artifacts)
  ]

  # function/role → grant on the data bucket
  storage_grants = merge([
    for k, f in local.functions : { for role in f.storage : "${k}/${role}" => { fn = k, role = role } }
  ]...)

  # Every function that changes a case may enqueue: a change's tasks are saved in its outbox and
  # flushed by whichever function touches the case next, so it may enqueue any kind.
  enqueuers = [for k, f in local.functions : k if f.enqueues]
  enqueue_grants = {
    for pair in setproduct(local.enqueuers, keys(local.queues)) :
    "${pair[0]}/${pair[1]}" => { fn = pair[0], queue = pair[1] }
  }

  invoker_grants = {
    for k, f in local.functions : k => (
      f.access == "public" ? "allUsers" :
      f.access == "iap" ? "serviceAccount:${google_project_service_identity.iap.email}" :
      "serviceAccount:${google_service_account.tasks_invoker.email}"
    )
  }
}

resource "google_project_iam_member" "build" {
  for_each = toset(local.build_roles)
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# The build does not read the bundle from our bucket: Cloud Functions first copies it into its
# own staging bucket in this project, gcf-v2-sources-<project number>-<region> (with a suffix
# under CMEK), created on the first deploy, and the build fetches it from there; with the grant
# above alone the first build fails ("Access to bucket gcf-v2-sources-... denied"). Google's
# documentation for a custom build service account of Cloud Run functions
# (cloud.google.com/functions/docs/building, "Grant permissions") asks for objectViewer on the
# run-sources-*, gcf-v2-sources-* and gcf-v2-uploads-* buckets, with this condition. (Its page
# for 1st gen functions also lists objectAdmin; why it is not given here: infra/README.md.)
resource "google_project_iam_member" "build_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"
  condition {
    title       = "Function source buckets only"
    description = "The buckets Cloud Functions stages function sources in (functions/docs/building)."
    expression  = <<-EOT
      resource.type == "storage.googleapis.com/Object" && (
        resource.name.startsWith("projects/_/buckets/gcf-v2-sources-") ||
        resource.name.startsWith("projects/_/buckets/gcf-v2-uploads-") ||
        resource.name.startsWith("projects/_/buckets/run-sources-"))
    EOT
  }
}

# Firestore: datastore.user (read and write documents) on the project's database. No function
# administers indexes or the database.
resource "google_project_iam_member" "firestore" {
  for_each = local.functions
  project  = var.project_id
  role     = each.value.firestore
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

# Cloud Storage: only on the data bucket, only the object roles each function needs.
resource "google_storage_bucket_iam_member" "fn" {
  for_each = local.storage_grants
  bucket   = google_storage_bucket.data.name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.fn[each.value.fn].email}"
}

# The staff function hands the SIAK hand-off zip out as a 5-minute V4 signed URL (after its
# role check and the access log): a Cloud Functions identity has no private key, so it signs
# through IAM (signBlob) as itself. Token creator on its own account only, nothing wider.
# Documents shown in the case page are still streamed through the function.
resource "google_service_account_iam_member" "staff_signs_urls" {
  service_account_id = google_service_account.fn["staff"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.fn["staff"].email}"
}

# Cloud Tasks: create tasks on SAPA's queues (not on the project's other queues) ...
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.enqueue_grants
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.queue[each.value.queue].name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.fn[each.value.fn].email}"
}

# ... whose OIDC token is the tasks-invoker's: creating such a task needs actAs on it.
resource "google_service_account_iam_member" "act_as_invoker" {
  for_each           = toset(local.enqueuers)
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.fn[each.key].email}"
}

# Who may call each function (2nd gen functions are Cloud Run services: run.invoker).
# Public functions: anyone, but only through the load balancer (ingress). Staff functions: the
# IAP service agent, after IAP let the officer in. Task functions: the tasks-invoker only.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  # allUsers: the WhatsApp webhook (Meta), the guest book and the verification page (residents)
  # and the e-sign callback (HMAC-signed) must be callable without a Google identity.
  for_each = local.invoker_grants
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = each.value
}
