# Cloud Storage: one bucket for the residents' documents, SIAK drafts and hand-off packages
# and the signed PDFs (BLOBS=gcs), one for the functions' source bundle.
#
# Retention (shared/sapa/data/retention.toml) is counted from the day a case CLOSES, which only
# SAPA knows: the retention sweep deletes requirement documents after 90 days and signed
# documents after 10 years and records it in the audit trail. The bucket's lifecycle cannot
# see case closure, so it does not delete live objects by age; it finishes what the sweep
# starts (a deleted object stays recoverable as a noncurrent version for
# var.noncurrent_version_days, then is purged for good) and moves old objects to a cheaper
# class (signed documents kept for the verification page are rarely read).

locals {
  data_bucket   = var.data_bucket_name != "" ? var.data_bucket_name : "${var.project_id}-sapa-data"
  source_bucket = var.source_bucket_name != "" ? var.source_bucket_name : "${var.project_id}-sapa-source"
}

# With CMEK (kms_key_name), Cloud Storage encrypts the objects with the key as the project's
# Cloud Storage service agent, which needs encrypter/decrypter on it before a bucket can name
# the key as its default (cloud.google.com/storage/docs/encryption/using-customer-managed-keys).
data "google_storage_project_service_account" "this" {
  count   = var.kms_key_name != "" ? 1 : 0
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "storage" {
  count         = var.kms_key_name != "" ? 1 : 0
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.this[0].email_address}"
}

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (Data Access logs for storage.googleapis.com are on, see audit.tf), which name the caller; legacy usage logs would add a second, anonymous copy.
  name                        = local.data_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = { app = "sapa", data = "personal" }

  # Signed documents must not be lost: an overwrite or deletion keeps the old version.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days, on top of versioning
  }

  dynamic "encryption" {
    for_each = var.kms_key_name != "" ? [var.kms_key_name] : []
    content {
      default_kms_key_name = encryption.value
    }
  }

  # A deleted or overwritten object is purged after the recovery window: the retention sweep's
  # deletions (requirement documents after 90 days) become final.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  # What is still there 120 days after upload is, per the retention schedule, almost only
  # signed documents (kept 10 years for the verification page): Nearline, read rarely.
  lifecycle_rule {
    condition {
      age        = 120
      with_state = "LIVE"
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.api, google_kms_crypto_key_iam_member.storage]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only the public source bundle; Cloud Audit Logs record who changes it.
  name                        = local.source_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = { app = "sapa", data = "source" }

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = var.kms_key_name != "" ? [var.kms_key_name] : []
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Each bundle is its own object (named by its hash); terraform deletes the previous one on
  # a new deployment, which leaves it as a noncurrent version for a rollback for 30 days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api, google_kms_crypto_key_iam_member.storage]
}
