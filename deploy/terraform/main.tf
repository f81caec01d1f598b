# Concilia on Google Cloud (deploy/README.md walks through it):
#   landing bucket --(object finalised)--> Pub/Sub topic --(push)--> Cloud Run `concilia watch`
#   Cloud Scheduler --(schedule tick)--> the same topic
#   `concilia watch` records deliveries in its ledger (gs://OUT/_service) and, when a period is complete,
#   runs it on Dataflow (workers use the same image) and publishes under gs://OUT.
# One service account runs everything, with only the roles it needs.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = { source = "hashicorp/google", version = ">= 5.30" }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {}

locals {
  services = ["dataflow.googleapis.com", "run.googleapis.com", "pubsub.googleapis.com", "cloudscheduler.googleapis.com",
  "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com", "compute.googleapis.com"]
}

resource "google_project_service" "apis" {
  for_each           = toset(local.services)
  service            = each.value
  disable_on_destroy = false
}

# --- storage: the landing zone (agencies write) and the outputs (runs, pointers, ledger, staging, temp) ---
resource "google_storage_bucket" "landing" {
  name                        = "${var.project}-${var.name}-landing"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning { enabled = true } # a corrected file never destroys the delivery it replaces
}

resource "google_storage_bucket" "data" {
  name                        = "${var.project}-${var.name}-data"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  lifecycle_rule { # Dataflow temp files and staged copies left by an interrupted run
    condition {
      matches_prefix = ["tmp/", "out/_service/staging/"]
      age            = 7
    }
    action { type = "Delete" }
  }
}

# --- the identity everything runs as -------------------------------------------------------------
resource "google_service_account" "runner" {
  account_id   = "${var.name}-runner"
  display_name = "Concilia watch service and Dataflow workers"
}

locals { runner = "serviceAccount:${google_service_account.runner.email}" }

resource "google_project_iam_member" "runner" {
  for_each = toset([
    "roles/dataflow.worker",    # be a Dataflow worker
    "roles/dataflow.developer", # create and watch its own jobs
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])
  project = var.project
  role    = each.value
  member  = local.runner
}

# launching a Dataflow job as itself
resource "google_service_account_iam_member" "runner_act_as_self" {
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.runner
}

resource "google_storage_bucket_iam_member" "landing_read" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer" # reads deliveries, never changes them
  member = local.runner
}

resource "google_storage_bucket_iam_member" "data_write" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectAdmin"
  member = local.runner
}

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = var.name
  format        = "DOCKER"
}

resource "google_artifact_registry_repository_iam_member" "runner_pull" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.runner
}

# --- the pseudonymisation key: the secret exists here; its value is added out of band -------------
resource "google_secret_manager_secret" "pseudonym_key" {
  secret_id = "${var.name}-pseudonym-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "runner_reads_key" {
  secret_id = google_secret_manager_secret.pseudonym_key.id
  role      = "roles/secretmanager.secretAccessor" # this one secret only
  member    = local.runner
}

# --- notifications: landing bucket -> topic; Cloud Scheduler -> the same topic ----------------------
resource "google_pubsub_topic" "events" {
  name = "${var.name}-events"
}

data "google_storage_project_service_account" "gcs" {}

resource "google_pubsub_topic_iam_member" "gcs_publishes" {
  topic  = google_pubsub_topic.events.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "landing" {
  bucket         = google_storage_bucket.landing.name
  topic          = google_pubsub_topic.events.id
  payload_format = "JSON_API_V1"
  event_types    = ["OBJECT_FINALIZE"]
  depends_on     = [google_pubsub_topic_iam_member.gcs_publishes]
}

resource "google_cloud_scheduler_job" "scheduled_run" {
  name      = "${var.name}-scheduled-run"
  schedule  = var.schedule
  time_zone = var.time_zone
  pubsub_target {
    topic_name = google_pubsub_topic.events.id
    data       = base64encode("{}")
    attributes = { concilia = "schedule" } # a schedule tick: periods run even if incomplete
  }
}

resource "google_cloud_scheduler_job" "catch_up" {
  name      = "${var.name}-catch-up"
  schedule  = "*/${var.poll_minutes} * * * *"
  time_zone = var.time_zone
  pubsub_target {
    topic_name = google_pubsub_topic.events.id
    data       = base64encode("{}")
    attributes = { concilia = "poll" } # a plain cycle over every period (missed notifications)
  }
}

# --- the control plane: `concilia watch` serving Pub/Sub push --------------------------------------
resource "google_cloud_run_v2_service" "watch" {
  name     = "${var.name}-watch"
  location = var.region
  ingress  = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  template {
    service_account                  = google_service_account.runner.email
    max_instance_request_concurrency = 80
    timeout                          = "60s"
    scaling {
      min_instance_count = 1 # one watcher per ledger (docs/service.md); it runs cycles in the background
      max_instance_count = 1
    }
    containers {
      image   = var.image
      command = ["concilia"]
      args = [
        "watch", "--http-port", "8080", "--log-json", "-v",
        "--landing", "gs://${google_storage_bucket.landing.name}",
        "--out", "gs://${google_storage_bucket.data.name}/out",
        "--runner", "DataflowRunner",
        "--", # Apache Beam's options from here on
        "--project=${var.project}", "--region=${var.region}",
        "--temp_location=gs://${google_storage_bucket.data.name}/tmp",
        "--sdk_container_image=${var.image}",
        "--service_account_email=${google_service_account.runner.email}",
        "--experiments=use_runner_v2",
      ]
      env {
        name  = "CONCILIA_PSEUDONYM_KEY_SECRET"
        value = "${google_secret_manager_secret.pseudonym_key.id}/versions/latest"
      }
      ports { container_port = 8080 }
      resources {
        cpu_idle = false # cycles run after the request is acknowledged
        limits   = { cpu = "2", memory = "4Gi" }
      }
      startup_probe {
        http_get { path = "/healthz" }
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_service_account" "pusher" {
  account_id   = "${var.name}-pusher"
  display_name = "Pub/Sub push identity for the Concilia watch service"
}

resource "google_cloud_run_v2_service_iam_member" "pusher_invokes" {
  name     = google_cloud_run_v2_service.watch.name
  location = google_cloud_run_v2_service.watch.location
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

resource "google_pubsub_subscription" "watch" {
  name                 = "${var.name}-watch"
  topic                = google_pubsub_topic.events.id
  ack_deadline_seconds = 60
  push_config {
    push_endpoint = google_cloud_run_v2_service.watch.uri
    oidc_token { service_account_email = google_service_account.pusher.email }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
}
