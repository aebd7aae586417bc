# Inputs. Only project_id and master_authorized_networks have no default; see terraform.tfvars.example.

variable "project_id" {
  description = "GCP project to create everything in."
  type        = string
}

variable "region" {
  description = "Region for the bucket, the image registry, the network and Cloud NAT."
  type        = string
  default     = "europe-west4"
}

variable "zone" {
  description = "Zone of the (zonal) cluster. Pick one that offers gpu_type (gcloud compute accelerator-types list)."
  type        = string
  default     = "europe-west4-a"
}

variable "cluster_name" {
  description = "Name of the GKE cluster (also prefixes the network, service accounts and node pools)."
  type        = string
  default     = "lmao"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.cluster_name))
    error_message = "cluster_name: lowercase letters, digits and '-', 2 to 21 characters, starting with a letter."
  }
}

variable "release_channel" {
  description = "GKE release channel (RAPID, REGULAR or STABLE)."
  type        = string
  default     = "REGULAR"
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the cluster. Set false before tearing down."
  type        = bool
  default     = false
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the Kubernetes API (your workstation, CI). Never 0.0.0.0/0."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
}

variable "master_ipv4_cidr_block" {
  description = "Private /28 range for the control plane (must not overlap the node network)."
  type        = string
  default     = "172.16.0.32/28"
}

variable "core_machine_type" {
  description = "Machine type of the core pool (Polyaxon API, UI, agent, Postgres)."
  type        = string
  default     = "e2-standard-4"
}

variable "core_node_count" {
  description = "Nodes in the core pool (autoscales between this and core_max_nodes)."
  type        = number
  default     = 1
}

variable "core_max_nodes" {
  description = "Most nodes in the core pool."
  type        = number
  default     = 3
}

variable "cpu_machine_type" {
  description = "Machine type of the CPU-experiments pool."
  type        = string
  default     = "n2-standard-8"
}

variable "cpu_max_nodes" {
  description = "Most nodes in the CPU-experiments pool (it scales from 0)."
  type        = number
  default     = 8
}

variable "cpu_spot" {
  description = "Run CPU experiments on Spot VMs (about 60-90% cheaper, may be reclaimed)."
  type        = bool
  default     = true
}

variable "gpu_machine_type" {
  description = "Machine type of the GPU-experiments pool (must fit gpu_type: g2-* for nvidia-l4, n1-* for nvidia-tesla-t4)."
  type        = string
  default     = "g2-standard-8"
}

variable "gpu_type" {
  description = "Accelerator type, e.g. nvidia-l4, nvidia-tesla-t4, nvidia-tesla-a100."
  type        = string
  default     = "nvidia-l4"
}

variable "gpu_count" {
  description = "GPUs per GPU node."
  type        = number
  default     = 1
}

variable "gpu_max_nodes" {
  description = "Most nodes in the GPU-experiments pool (it scales from 0). Check your GPU quota."
  type        = number
  default     = 4
}

variable "gpu_trials_per_gpu" {
  description = "Trials (containers) that share each GPU through GKE GPU time-sharing; 1 gives each trial a whole GPU. One protocol trial leaves most of a GPU idle (six ran at once on one H100). A trial still requests nvidia.com/gpu: 1, and each node also needs CPU and memory for every trial it runs."
  type        = number
  default     = 3

  validation {
    condition     = var.gpu_trials_per_gpu >= 1 && var.gpu_trials_per_gpu <= 48 && floor(var.gpu_trials_per_gpu) == var.gpu_trials_per_gpu
    error_message = "gpu_trials_per_gpu must be a whole number from 1 to 48 (GKE's limit on clients per GPU)."
  }
}

variable "gpu_spot" {
  description = "Run GPU experiments on Spot VMs (preemptible; trials resume from the cache)."
  type        = bool
  default     = true
}

variable "builds_machine_type" {
  description = "Machine type of the builds pool (in-cluster image builds)."
  type        = string
  default     = "e2-standard-4"
}

variable "builds_max_nodes" {
  description = "Most nodes in the builds pool (it scales from 0)."
  type        = number
  default     = 1
}

variable "node_disk_size_gb" {
  description = "Boot disk size of every node (CUDA images are large)."
  type        = number
  default     = 100
}

variable "bucket_name" {
  description = "Name of the artifacts/cache bucket; empty means <project_id>-lmao-artifacts."
  type        = string
  default     = ""
}

variable "scratch_retention_days" {
  description = "Objects under scratch/ in the bucket are deleted after this many days."
  type        = number
  default     = 7
}

variable "noncurrent_retention_days" {
  description = "Overwritten or deleted object versions are kept this many days (versioning is on)."
  type        = number
  default     = 7
}

variable "bucket_force_destroy" {
  description = "Let `terraform destroy` delete the bucket with everything in it (results included!)."
  type        = bool
  default     = false
}

variable "artifact_repository" {
  description = "Artifact Registry (Docker) repository id for the experiment image."
  type        = string
  default     = "lmao"
}

variable "polyaxon_chart_version" {
  description = "Polyaxon Helm chart version; keep equal to the polyaxon client in pyproject.toml."
  type        = string
  default     = "2.18.0"
}

variable "polyaxon_namespace" {
  description = "Kubernetes namespace for Polyaxon and its runs."
  type        = string
  default     = "polyaxon"
}

variable "polyaxon_ingress_host" {
  description = "DNS name for the Polyaxon UI over HTTPS (Google-managed certificate). Empty: no ingress, use port-forward."
  type        = string
  default     = ""
}

variable "polyaxon_ingress_allowed_cidrs" {
  description = "Source ranges allowed through the ingress (Cloud Armor). Polyaxon CE has no login: keep this tight."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels put on the cluster, bucket and registry (cost reports)."
  type        = map(string)
  default     = { app = "lmao-experiments" }
}

variable "maintenance_start_time" {
  description = "Start of the weekly window in which GKE may upgrade or repair nodes (RFC 3339, UTC)."
  type        = string
  default     = "2025-01-04T02:00:00Z"
}

variable "maintenance_end_time" {
  description = "End of the first window (its length repeats every recurrence)."
  type        = string
  default     = "2025-01-04T08:00:00Z"
}

variable "maintenance_recurrence" {
  description = "RFC 5545 RRULE of the maintenance window (default: Saturdays and Sundays)."
  type        = string
  default     = "FREQ=WEEKLY;BYDAY=SA,SU"
}

variable "polyaxon_runs_reach_api" {
  description = "Let trial pods open connections to Polyaxon's API (unauthenticated in CE); needed only by the bayes polyaxonfiles."
  type        = bool
  default     = false
}

variable "polyaxon_store_key_secret" {
  description = "Name of a Kubernetes Secret in polyaxon_namespace holding a key of the trials service account (key GC_KEYFILE_DICT). Polyaxon 2.18.0 reads its gs:// artifacts store only with a key file, not with Workload Identity (terraform-gke/README.md); empty: none mounted."
  type        = string
  default     = ""
}
