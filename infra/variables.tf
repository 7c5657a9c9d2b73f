# Inputs of the deployment. infra/terraform.tfvars.example shows a filled-in set.

variable "project_id" {
  description = "Google Cloud project id (billing enabled)."
  type        = string
}

variable "region" {
  description = "Region of every regional resource. Jakarta keeps personal data in Indonesia (UU 27/2022)."
  type        = string
  default     = "asia-southeast2"
}

variable "prefix" {
  description = "Prefix of every resource name, of the functions (sapa-wa-webhook) and of the Cloud Tasks queues (sapa-notify)."
  type        = string
  default     = "sapa-"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,8}$", var.prefix))
    error_message = "prefix: lower-case letters, digits and '-', at most 9 characters (service account ids are limited to 30)."
  }
}

variable "office_name" {
  description = "The office SAPA serves, as shown in descriptions and the IAP consent screen."
  type        = string
  default     = "Disdukcapil Kabupaten Gowa"
}

variable "domain" {
  description = "Host name residents and staff use (guest-book links, QR codes, the staff workspace, the WhatsApp webhook). Its DNS A record must point at the `ip_address` output."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.domain))
    error_message = "domain: a DNS host name such as sapa.gowakab.go.id (no scheme, no path)."
  }
}

variable "wa_phone_numbers" {
  description = "WhatsApp Cloud API phone_number_id of each kecamatan's service number → kecamatan code (730601 … 730618)."
  type        = map(string)
  validation {
    condition     = length(var.wa_phone_numbers) > 0 && alltrue([for code in values(var.wa_phone_numbers) : can(regex("^7306(0[1-9]|1[0-8])$", code))])
    error_message = "wa_phone_numbers: at least one entry; every value a Gowa kecamatan code 730601 … 730618."
  }
  validation {
    condition     = alltrue([for id in keys(var.wa_phone_numbers) : can(regex("^[0-9]+$", id))])
    error_message = "wa_phone_numbers: keys are Meta's numeric phone_number_id (WhatsApp Manager → API setup), not the phone numbers."
  }
}

variable "wa_api_base" {
  description = "Graph API base of the WhatsApp Cloud API."
  type        = string
  default     = "https://graph.facebook.com/v21.0"
}

variable "iap_members" {
  description = "Who may open the staff workspace through Identity-Aware Proxy (user:…, group:…, domain:…). Their roles in SAPA come from the staff file in the bundle."
  type        = list(string)
  validation {
    condition     = alltrue([for m in var.iap_members : can(regex("^(user|group|domain):", m))])
    error_message = "iap_members: each entry starts with user:, group: or domain:."
  }
}

variable "iap_oauth_client_id" {
  description = "OAuth client id for IAP. Empty: the Google-managed OAuth client (only accounts of your own Google Workspace / Cloud Identity organisation can sign in)."
  type        = string
  default     = ""
}

variable "iap_oauth_client_secret" {
  description = "OAuth client secret for IAP (with iap_oauth_client_id). Note: IAP keeps it in the backend service, so it is in terraform state; protect the state bucket."
  type        = string
  default     = ""
  sensitive   = true
}

variable "signer" {
  description = "TTE signer: bsre (the BSrE Esign Client Service, production) or local (a development certificate per instance; for trials only)."
  type        = string
  default     = "bsre"
  validation {
    condition     = contains(["bsre", "local"], var.signer)
    error_message = "signer: bsre or local."
  }
}

variable "bsre_base_url" {
  description = "Base URL of the BSrE Esign Client Service inside the agency network, e.g. https://esign.gowakab.go.id (SIGNER=bsre)."
  type        = string
  default     = ""
}

variable "bsre_api" {
  description = "BSrE API version: v1 (multipart) or v2 (JSON)."
  type        = string
  default     = "v1"
  validation {
    condition     = contains(["v1", "v2"], var.bsre_api)
    error_message = "bsre_api: v1 or v2."
  }
}

variable "bsre_v1_box" {
  description = "BSrE API v1 only: whether the service reads width/height as the signature box's size or as its upper-right corner (the guide says both). Settle it with one test signature (README, TTE)."
  type        = string
  default     = "size"
  validation {
    condition     = contains(["size", "corners"], var.bsre_v1_box)
    error_message = "bsre_v1_box: size or corners."
  }
}

variable "bsre_ca_in_bundle" {
  description = "The BSrE service's TLS certificate is issued by an internal CA shipped in the bundle (`make bundle BSRE_CA=ca.pem`)."
  type        = bool
  default     = false
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/P/locations/R/connectors/NAME) through which the signer task reaches BSrE on the agency network. Empty: direct internet egress."
  type        = string
  default     = ""
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/asia-southeast2/keyRings/R/cryptoKeys/K) for CMEK on the buckets and the secrets. Empty: Google-managed encryption. Terraform grants the Cloud Storage and Secret Manager service agents roles/cloudkms.cryptoKeyEncrypterDecrypter on it, so whoever applies needs permission to set the key's IAM policy."
  type        = string
  default     = ""
}

variable "data_bucket_name" {
  description = "Bucket for residents' documents, SIAK drafts and signed PDFs. Empty: <project>-sapa-data."
  type        = string
  default     = ""
}

variable "source_bucket_name" {
  description = "Bucket for the functions' source bundle. Empty: <project>-sapa-source."
  type        = string
  default     = ""
}

variable "bundle_path" {
  description = "The bundle `make bundle` builds. Empty: ../dist/sapa-functions.zip next to this folder."
  type        = string
  default     = ""
}

variable "runtime" {
  description = "Cloud Functions Python runtime; the same minor version requirements.lock was resolved with."
  type        = string
  default     = "python311"
}

variable "secret_versions" {
  description = "Secret name → version the functions read (default: latest). Pin a number to roll a rotation out deliberately: changing it redeploys the functions that read that secret."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the Firestore database and refuse to delete non-empty buckets. Keep true in production."
  type        = bool
  default     = true
}

variable "firestore_daily_backup_retention" {
  description = "How long each daily Firestore backup is kept (Firestore allows up to 7 days for daily backups)."
  type        = string
  default     = "604800s"
}

variable "firestore_weekly_backup_retention" {
  description = "How long each weekly Firestore backup is kept (up to 14 weeks)."
  type        = string
  default     = "8467200s" # 14 weeks
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object stays recoverable in the data bucket before it is purged (also the delay after which a retention deletion is final)."
  type        = number
  default     = 30
}

variable "max_upload_mb" {
  description = "Per-file upload limit of the guest book (MAX_UPLOAD_MB); below Cloud Functions' 32 MB request limit."
  type        = number
  default     = 10
  validation {
    condition     = var.max_upload_mb >= 1 && var.max_upload_mb <= 25
    error_message = "max_upload_mb: 1 … 25 (a request to a function may not exceed 32 MB)."
  }
}

variable "task_functions_ingress" {
  description = "Ingress of the queue and scheduled functions. Cloud Tasks and Cloud Scheduler of the same project count as internal traffic; ALLOW_ALL still leaves them callable only with the tasks-invoker's OIDC token (IAM and the functions' own check)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"
  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.task_functions_ingress)
    error_message = "task_functions_ingress: ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}
