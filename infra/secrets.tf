# Secret Manager: terraform creates the containers and grants access; the values are added out
# of band (`gcloud secrets versions add`, see infra/README.md), so no value is ever in terraform
# state. Functions read them as secret environment variables named like the setting.

locals {
  # What shared/sapa/settings.py demands of every function when SAPA_ENV=cloud (each function
  # builds its settings at start). TASK_TOKEN is not among them: with TASK_SERVICE_ACCOUNT set,
  # task and job endpoints accept only Google-signed OIDC tokens.
  common_secrets = [
    "WA_TOKEN",
    "WA_APP_SECRET",
    "WA_VERIFY_TOKEN",
    "LINK_SECRET",
    "SESSION_SECRET",
    "ESIGN_CALLBACK_SECRET",
  ]
  # SIGNER=bsre demands the BSrE account where SIGNER is set (staff, esign_request).
  bsre_secrets = var.signer == "bsre" ? ["BSRE_USERNAME", "BSRE_PASSWORD", "BSRE_NIK"] : []

  function_secrets = {
    for k, f in local.functions : k => tolist(concat(local.common_secrets, f.signer ? local.bsre_secrets : []))
  }
  secret_names = toset(concat(local.common_secrets, local.bsre_secrets))
  secret_grants = merge([
    for k, names in local.function_secrets : { for n in names : "${k}/${n}" => { fn = k, secret = n } }
  ]...)
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secret_names
  secret_id = "${var.prefix}${lower(replace(each.key, "_", "-"))}"
  labels    = { app = "sapa", setting = lower(each.key) }

  # Kept in Jakarta only (UU 27/2022), like the data they protect.
  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name != "" ? [var.kms_key_name] : []
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }
  depends_on = [google_project_service.api, google_kms_crypto_key_iam_member.secretmanager]
}

# With CMEK (kms_key_name), Secret Manager encrypts and decrypts every secret version with the
# key as its own service agent, service-<project number>@gcp-sa-secretmanager.iam.gserviceaccount.com,
# which therefore needs encrypter/decrypter on the key before the secrets are created
# (cloud.google.com/secret-manager/docs/cmek). The agent exists once it is asked for
# (`gcloud beta services identity create`), hence google-beta's service identity.
resource "google_project_service_identity" "secretmanager" {
  count      = var.kms_key_name != "" ? 1 : 0
  provider   = google-beta
  project    = var.project_id
  service    = "secretmanager.googleapis.com"
  depends_on = [google_project_service.api]
}

resource "google_kms_crypto_key_iam_member" "secretmanager" {
  count         = var.kms_key_name != "" ? 1 : 0
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_project_service_identity.secretmanager[0].email}"
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each  = local.secret_grants
  project   = var.project_id
  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.fn].email}"
}
