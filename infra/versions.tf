# SAPA on Google Cloud: providers and the services the deployment needs.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8"
    }
    # Only for google_project_service_identity (the IAP service agent that invokes the staff
    # functions, and Secret Manager's, which encrypts with kms_key_name); everything else uses
    # the GA provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.10, < 8"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  apis = [
    "artifactregistry.googleapis.com", # images built from the bundle
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com", # the HTTPS load balancer
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com", # 2nd gen functions run on Cloud Run
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "api" {
  for_each = toset(local.apis)
  service  = each.value
  # Turning an API off on `terraform destroy` would break anything else in the project.
  disable_on_destroy = false
}
