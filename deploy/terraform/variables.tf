variable "project" {
  description = "GCP project id"
  type        = string
}

variable "region" {
  description = "Region for Dataflow, Cloud Run, Scheduler and the buckets"
  type        = string
  default     = "southamerica-west1"
}

variable "name" {
  description = "Prefix for every resource name"
  type        = string
  default     = "concilia"
}

variable "image" {
  description = "The image built from deploy/Dockerfile, e.g. REGION-docker.pkg.dev/PROJECT/concilia/concilia:TAG"
  type        = string
}

variable "schedule" {
  description = "Cloud Scheduler cron (in time_zone) for scheduled runs: periods run even if incomplete"
  type        = string
  default     = "0 6 1 * *"
}

variable "time_zone" {
  type    = string
  default = "America/Lima"
}

variable "poll_minutes" {
  description = "How often Cloud Scheduler also asks for a plain cycle (catch-up of missed notifications)"
  type        = number
  default     = 30
}
