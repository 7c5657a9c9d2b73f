# Firestore (native mode) in Jakarta: the CaseStore (STORE=firestore), its composite indexes,
# point-in-time recovery and scheduled backups for disaster recovery.
#
# TTL: rate-limit counters (`sequences` with an `rl:` scope) carry `expire_at` (the end of the
# window after theirs); the policy below lets Firestore delete them (within about a day of that
# time), and the retention job deletes whatever is left. Registration-number sequences and
# `dedupe` records have no `expire_at` and are kept.

resource "google_firestore_database" "db" {
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED" # 7 days of versions
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
  depends_on                        = [google_project_service.api]
}

locals {
  # The composite indexes listed in shared/sapa/adapters/cloud/firestore_store.py (its module
  # docstring, checked by tests/infra): name → collection and fields in order.
  firestore_indexes = {
    cases_kecamatan_wa_updated = { collection = "cases", fields = [["kecamatan", "ASCENDING"], ["wa_id", "ASCENDING"], ["updated_at", "DESCENDING"]] }
    cases_state_kecamatan      = { collection = "cases", fields = [["state", "ASCENDING"], ["kecamatan", "ASCENDING"], ["updated_at", "ASCENDING"]] }
    cases_state_updated        = { collection = "cases", fields = [["state", "ASCENDING"], ["updated_at", "ASCENDING"]] }
    cases_kecamatan_updated    = { collection = "cases", fields = [["kecamatan", "ASCENDING"], ["updated_at", "ASCENDING"]] }
    cases_kecamatan_newest     = { collection = "cases", fields = [["kecamatan", "ASCENDING"], ["updated_at", "DESCENDING"]] }
    cases_outbox_updated       = { collection = "cases", fields = [["has_outbox", "ASCENDING"], ["updated_at", "ASCENDING"]] }
    messages_case_at           = { collection = "messages", fields = [["case_id", "ASCENDING"], ["at", "ASCENDING"], ["added", "ASCENDING"]] }
    access_log_case_at         = { collection = "access_log", fields = [["case_id", "ASCENDING"], ["at", "ASCENDING"]] }
    access_log_actor_at        = { collection = "access_log", fields = [["actor_id", "ASCENDING"], ["at", "ASCENDING"]] }
    access_log_case_actor_at   = { collection = "access_log", fields = [["case_id", "ASCENDING"], ["actor_id", "ASCENDING"], ["at", "ASCENDING"]] }
    wa_notices_field_at        = { collection = "wa_notices", fields = [["field", "ASCENDING"], ["at", "DESCENDING"]] }
    rollups_part_day           = { collection = "rollups", fields = [["part", "ASCENDING"], ["day", "ASCENDING"]] }
    rollups_kecamatan_day      = { collection = "rollups", fields = [["part", "ASCENDING"], ["kecamatan", "ASCENDING"], ["day", "ASCENDING"]] }
    rollups_service_day        = { collection = "rollups", fields = [["part", "ASCENDING"], ["service", "ASCENDING"], ["day", "ASCENDING"]] }
    rollups_kecamatan_service  = { collection = "rollups", fields = [["part", "ASCENDING"], ["kecamatan", "ASCENDING"], ["service", "ASCENDING"], ["day", "ASCENDING"]] }
  }
}

resource "google_firestore_index" "index" {
  for_each   = local.firestore_indexes
  project    = var.project_id
  database   = google_firestore_database.db.name
  collection = each.value.collection

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# Daily backups for the last week and weekly ones for 14 weeks (Firestore's limits), on top of
# the 7 days of point-in-time recovery: a bad deployment or an operator's mistake found late
# can still be undone (`gcloud firestore databases restore`).
resource "google_firestore_backup_schedule" "daily" {
  project   = var.project_id
  database  = google_firestore_database.db.name
  retention = var.firestore_daily_backup_retention
  daily_recurrence {}
}

resource "google_firestore_backup_schedule" "weekly" {
  project   = var.project_id
  database  = google_firestore_database.db.name
  retention = var.firestore_weekly_backup_retention
  weekly_recurrence {
    day = "SUNDAY"
  }
}

resource "google_firestore_field" "sequences_ttl" {
  project    = var.project_id
  database   = google_firestore_database.db.name
  collection = "sequences"
  field      = "expire_at"
  ttl_config {}
  # single-field indexes left on: the retention job queries expire_at < now
}

# The rollups' counters (a map of a few hundred numbers per cell) are read whole and never
# queried: no single-field index on them, so a save's increments write no index entries and a
# busy cell stays far from the 40,000 index entries a document may have.
resource "google_firestore_field" "rollups_counters" {
  project    = var.project_id
  database   = google_firestore_database.db.name
  collection = "rollups"
  field      = "f"
  index_config {}
}
