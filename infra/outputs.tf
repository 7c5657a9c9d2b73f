output "webhook_url" {
  description = "Callback URL to paste into Meta (WhatsApp → Configuration → Webhook), with the WA_VERIFY_TOKEN secret's value as the verify token."
  value       = "${local.public_base_url}/wa/webhook"
}

output "public_base_url" {
  description = "Base of guest-book links (/guestbook/f/…) and of the verification page behind the QR codes (/verify/d/…)."
  value       = local.public_base_url
}

output "guestbook_base_url" {
  description = "Guest-book links sent to residents start with this."
  value       = "${local.public_base_url}/guestbook"
}

output "verify_base_url" {
  description = "The QR code of a signed document points below this."
  value       = "${local.public_base_url}/verify"
}

output "staff_url" {
  description = "The staff workspace (behind Identity-Aware Proxy)."
  value       = "${local.public_base_url}/staff"
}

output "ip_address" {
  description = "Point the domain's DNS A record here; the managed certificate is issued once it resolves."
  value       = google_compute_global_address.lb.address
}

output "secrets" {
  description = "Setting → Secret Manager secret id; add each value with `gcloud secrets versions add <id> --data-file=-`."
  value       = { for name, s in google_secret_manager_secret.secret : name => s.secret_id }
}

output "tasks_invoker" {
  description = "Service account Cloud Tasks and Cloud Scheduler sign their OIDC tokens as (TASK_SERVICE_ACCOUNT)."
  value       = google_service_account.tasks_invoker.email
}

output "iap_audience" {
  description = "IAP_AUDIENCE of the staff workspace."
  value       = local.iap_audience["staff"]
}
