# SAPA on Google Cloud. Empty root for now: the resources come with the Google Cloud issue.
terraform {
  required_version = ">= 1.5"
}
