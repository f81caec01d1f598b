output "landing_bucket" { value = google_storage_bucket.landing.name }
output "data_bucket" { value = google_storage_bucket.data.name }
output "runner_service_account" { value = google_service_account.runner.email }
output "pseudonym_key_secret" { value = google_secret_manager_secret.pseudonym_key.id }
output "watch_url" { value = google_cloud_run_v2_service.watch.uri }
output "events_topic" { value = google_pubsub_topic.events.id }
