# Cloud Scheduler: the scheduled HTTP functions, called like a queue task (POST with an OIDC
# token of the tasks-invoker service account whose audience is the function's URL, which is
# what the functions check: settings.task_url).

locals {
  scheduled_jobs = {
    # Steps past their mutu baku, reminders, expiry: every five minutes, day and night (the
    # SLA clocks themselves know working hours).
    sla_sweep = { schedule = "*/5 * * * *", retries = 0 } # the next run comes in 5 minutes
    # Retention schedule: once a night at 01:30 WITA, when nobody works.
    retention_sweep = { schedule = "30 1 * * *", retries = 3 }
  }
}

resource "google_cloud_scheduler_job" "job" {
  for_each         = local.scheduled_jobs
  name             = local.function_name[each.key]
  description      = "SAPA ${var.office_name}: ${each.key}"
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Asia/Makassar" # WITA, Gowa's time
  attempt_deadline = "${local.functions[each.key].timeout}s"

  retry_config {
    retry_count          = each.value.retries
    min_backoff_duration = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = local.function_url[each.key]
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.tasks_invoker.email
      audience              = local.function_url[each.key]
    }
  }

  depends_on = [google_project_service.api, google_cloudfunctions2_function.fn]
}
