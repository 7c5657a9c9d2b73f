# Cloud Audit Logs, Data Access: every read and write of Firestore documents, of the documents
# in Cloud Storage and of secret values, with the caller's identity. UU 27/2022 asks the office
# to know what was accessed when it reports a breach (3 x 24 hours). Note: an audit config is
# authoritative for its service in this project.

resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(["datastore.googleapis.com", "storage.googleapis.com", "secretmanager.googleapis.com"])
  project  = var.project_id
  service  = each.value
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# Guest-book links carry a signed token in the path (/guestbook/f/<token>) that opens a
# resident's form for days: request logs (the load balancer's and Cloud Run's) must not keep
# it. Requests to the guest book are left out of Cloud Logging altogether; the function's own
# log lines name the case, never the token.
resource "google_logging_project_exclusion" "guestbook_links" {
  name        = "${var.prefix}guestbook-links"
  description = "Request logs of guest-book links (the path holds a bearer token)"
  filter      = "httpRequest.requestUrl:\"/guestbook/f/\""
}
