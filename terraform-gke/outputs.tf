# What the README, `make image` and the polyaxonfiles need from this stack.

output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.main.name
}

output "cluster_location" {
  description = "Zone of the cluster."
  value       = google_container_cluster.main.location
}

output "get_credentials_command" {
  description = "Configures kubectl for the cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.main.name} --zone ${google_container_cluster.main.location} --project ${var.project_id}"
}

output "bucket_name" {
  description = "Bucket for Polyaxon artifacts, trial outputs and caches."
  value       = google_storage_bucket.artifacts.name
}

output "artifacts_url" {
  description = "Pass to `lmao trial --artifacts` (one sub-folder per sweep/trial)."
  value       = "gs://${google_storage_bucket.artifacts.name}/runs"
}

output "cache_url" {
  description = "Pass to `lmao trial --cache` (content-addressed pretraining cache)."
  value       = "gs://${google_storage_bucket.artifacts.name}/cache"
}

output "scratch_url" {
  description = "Temporary files; deleted by the lifecycle rule after scratch_retention_days."
  value       = "gs://${google_storage_bucket.artifacts.name}/scratch"
}

output "trials_service_account" {
  description = "Google service account the Polyaxon runs (trials) and the agent act as (Workload Identity)."
  value       = google_service_account.trials.email
}

output "platform_service_account" {
  description = "Google service account Polyaxon's API, streams and gateway act as (Workload Identity)."
  value       = google_service_account.platform.email
}

output "polyaxon_service_accounts" {
  description = "Kubernetes service accounts the chart creates for this release (runs, agent)."
  value       = [local.polyaxon_runs_ksa, local.polyaxon_agent_ksa]
}

output "registry_url" {
  description = "Artifact Registry Docker repository (`make image` pushes <registry_url>/lmao:<tag>)."
  value       = local.registry_url
}

output "image" {
  description = "Image name for the polyaxonfiles (tag with the git commit)."
  value       = "${local.registry_url}/lmao"
}

output "polyaxon_namespace" {
  description = "Namespace of Polyaxon and its runs."
  value       = var.polyaxon_namespace
}

output "polyaxon_port_forward_command" {
  description = "Opens the Polyaxon UI/API on http://localhost:8000."
  value       = "kubectl port-forward -n ${var.polyaxon_namespace} svc/${local.polyaxon_gateway_svc} 8000:80"
}

output "polyaxon_url" {
  description = "Where the Polyaxon UI is (after port-forward when no ingress host is set)."
  value       = local.ingress ? "https://${var.polyaxon_ingress_host}" : "http://localhost:8000"
}

output "polyaxon_ingress_ip" {
  description = "Point the DNS A record of polyaxon_ingress_host here (empty without ingress)."
  value       = local.ingress ? google_compute_global_address.polyaxon[0].address : ""
}

output "job_scheduling" {
  description = "nodeSelector and tolerations for polyaxonfile `environment:` blocks, per pool."
  value = {
    for pool, spec in local.pools : pool => {
      nodeSelector = { "lmao/pool" = pool }
      tolerations  = [for t in spec.taints : { key = t.key, operator = "Equal", value = t.value, effect = "NoSchedule" }]
    } if pool != "core"
  }
}
