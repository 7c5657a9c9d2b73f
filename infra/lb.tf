# One HTTPS load balancer on the office's domain in front of the HTTP functions, routing by
# path prefix exactly like the local server (/wa/webhook, /guestbook, /verify, /esign/callback,
# /staff, /approval), so guest-book links, QR codes and the staff pages share one host
# (PUBLIC_BASE_URL). The staff workspace and the approval function sit behind Identity-Aware
# Proxy; their functions check IAP's signed header against IAP_AUDIENCE (this backend service).

locals {
  # (only the string attributes: a map's values must share one type)
  http_functions = { for k, f in local.functions : k => { access = f.access, path = f.path } if f.access != "tasks" }
  iap_functions  = [for k, f in local.functions : k if f.access == "iap"]

  # The audience of IAP's signed header for each IAP backend (settings.iap_audience).
  iap_audience = {
    for k in local.iap_functions :
    k => "/projects/${data.google_project.this.number}/global/backendServices/${google_compute_backend_service.fn[k].generated_id}"
  }

  iap_grants = {
    for pair in setproduct(local.iap_functions, var.iap_members) :
    "${pair[0]}/${pair[1]}" => { fn = pair[0], member = pair[1] }
  }
}

resource "google_project_service_identity" "iap" {
  provider = google-beta
  project  = var.project_id
  service  = "iap.googleapis.com"
  # the agent of a service that is not enabled yet cannot be made
  depends_on = [google_project_service.api]
}

resource "google_compute_global_address" "lb" {
  name       = "${var.prefix}lb"
  depends_on = [google_project_service.api]
}

resource "google_compute_managed_ssl_certificate" "lb" {
  name = "${var.prefix}cert"
  managed {
    domains = [var.domain]
  }
  depends_on = [google_project_service.api]
}

resource "google_compute_ssl_policy" "lb" {
  name            = "${var.prefix}tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
  depends_on      = [google_project_service.api]
}

# A 2nd gen function is a Cloud Run service of the same name. The NEG names the service rather
# than referencing the function resource: the function's IAP_AUDIENCE comes from the backend
# service, which must not wait for the function.
resource "google_compute_region_network_endpoint_group" "fn" {
  for_each              = local.http_functions
  name                  = "${local.function_name[each.key]}-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = local.function_name[each.key]
  }
  depends_on = [google_project_service.api]
}

resource "google_compute_backend_service" "fn" {
  for_each              = local.http_functions
  name                  = "${local.function_name[each.key]}-backend"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"

  backend {
    group = google_compute_region_network_endpoint_group.fn[each.key].id
  }

  # The load balancer's request log: who reached which path, kept like every other log.
  log_config {
    enable      = true
    sample_rate = 1.0
  }

  dynamic "iap" {
    for_each = each.value.access == "iap" ? [1] : []
    content {
      enabled              = true
      oauth2_client_id     = var.iap_oauth_client_id != "" ? var.iap_oauth_client_id : null
      oauth2_client_secret = var.iap_oauth_client_id != "" ? var.iap_oauth_client_secret : null
    }
  }
}

resource "google_compute_url_map" "https" {
  name = "${var.prefix}lb"
  # Anything else (a mistyped address, a scanner) lands on the public verification page.
  default_url_redirect {
    path_redirect          = "/verify/"
    redirect_response_code = "FOUND"
    strip_query            = true
  }

  host_rule {
    hosts        = [var.domain]
    path_matcher = "sapa"
  }

  path_matcher {
    name = "sapa"
    default_url_redirect {
      path_redirect          = "/verify/"
      redirect_response_code = "FOUND"
      strip_query            = true
    }
    dynamic "path_rule" {
      for_each = local.http_functions
      content {
        paths   = [path_rule.value.path, "${path_rule.value.path}/*"]
        service = google_compute_backend_service.fn[path_rule.key].id
      }
    }
  }
}

resource "google_compute_target_https_proxy" "lb" {
  name             = "${var.prefix}https"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.lb.id]
  ssl_policy       = google_compute_ssl_policy.lb.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.prefix}https"
  target                = google_compute_target_https_proxy.lb.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "http_redirect" {
  name = "${var.prefix}http-redirect"
  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  name    = "${var.prefix}http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${var.prefix}http"
  target                = google_compute_target_http_proxy.redirect.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Officers allowed through IAP (their roles in SAPA come from the staff file).
resource "google_iap_web_backend_service_iam_member" "staff" {
  for_each            = local.iap_grants
  project             = var.project_id
  web_backend_service = google_compute_backend_service.fn[each.value.fn].name
  role                = "roles/iap.httpsResourceAccessor"
  member              = each.value.member
}
