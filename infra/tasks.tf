# Cloud Tasks: one queue per task kind, read from the same file the Cloud Tasks adapter reads
# (shared/sapa/data/queues.json), so code and infrastructure cannot drift. Queue id:
# <prefix><kind with '-' for '_'>, e.g. sapa-media-store; it calls the function of that name.

resource "google_cloud_tasks_queue" "queue" {
  for_each = local.queues
  name     = "${var.prefix}${replace(each.key, "_", "-")}"
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts = each.value.max_attempts
    min_backoff  = "${each.value.min_backoff_seconds}s"
    max_backoff  = "${each.value.max_backoff_seconds}s"
    # queues.json: the backoff doubles from min to max (16 doublings reach any max we use)
    max_doublings = 16
  }

  # Every attempt's outcome in Cloud Logging (task name and status, never the payload).
  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.api]
}
