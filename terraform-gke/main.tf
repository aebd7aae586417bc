# GKE cluster for the LMAO sweeps: core / CPU-experiments / GPU-experiments / builds node pools,
# a bucket for Polyaxon artifacts and the trial caches, the image registry, and Polyaxon via Helm.

locals {
  bucket_name   = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-lmao-artifacts"
  registry_url  = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_repository}"
  workload_pool = "${var.project_id}.svc.id.goog"
  ingress       = var.polyaxon_ingress_host != ""

  # Names the Polyaxon chart derives from the Helm release name (tools/check_infra.py checks these against
  # the chart's templates for polyaxon_chart_version and against the READMEs): _helpers.tpl
  # "polyaxon.fullname" = "<release>-polyaxon"; runs-sa.yaml / agent-sa.yaml add "-runs-sa" / "-agent-sa";
  # gateway-svc.yaml adds "-gateway". API, streams and gateway pods set no serviceAccountName, so they run
  # as the namespace's "default" service account.
  polyaxon_release      = "polyaxon"
  polyaxon_fullname     = "${local.polyaxon_release}-polyaxon"
  polyaxon_runs_ksa     = "${local.polyaxon_fullname}-runs-sa"
  polyaxon_agent_ksa    = "${local.polyaxon_fullname}-agent-sa"
  polyaxon_gateway_svc  = "${local.polyaxon_fullname}-gateway"
  polyaxon_platform_ksa = "default"

  # Every node pool carries the label lmao/pool=<name>; experiment and build pools are tainted so
  # only pods that tolerate the taint (and select the pool) land there.
  pools = {
    core = {
      machine_type = var.core_machine_type
      min_nodes    = var.core_node_count
      max_nodes    = var.core_max_nodes
      spot         = false
      gpus         = 0
      taints       = []
    }
    cpu = {
      machine_type = var.cpu_machine_type
      min_nodes    = 0
      max_nodes    = var.cpu_max_nodes
      spot         = var.cpu_spot
      gpus         = 0
      taints       = [{ key = "lmao/pool", value = "cpu", effect = "NO_SCHEDULE" }]
    }
    gpu = {
      machine_type = var.gpu_machine_type
      min_nodes    = 0
      max_nodes    = var.gpu_max_nodes
      spot         = var.gpu_spot
      gpus         = var.gpu_count
      taints = [
        { key = "lmao/pool", value = "gpu", effect = "NO_SCHEDULE" },
        { key = "nvidia.com/gpu", value = "present", effect = "NO_SCHEDULE" },
      ]
    }
    builds = {
      machine_type = var.builds_machine_type
      min_nodes    = 0
      max_nodes    = var.builds_max_nodes
      spot         = false
      gpus         = 0
      taints       = [{ key = "lmao/pool", value = "builds", effect = "NO_SCHEDULE" }]
    }
  }

  node_roles = [
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ]
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${google_container_cluster.main.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(google_container_cluster.main.master_auth[0].cluster_ca_certificate)
}

provider "helm" {
  kubernetes {
    host                   = "https://${google_container_cluster.main.endpoint}"
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = base64decode(google_container_cluster.main.master_auth[0].cluster_ca_certificate)
  }
}

# --- APIs -----------------------------------------------------------------------------------------

resource "google_project_service" "apis" {
  for_each = toset([
    "compute.googleapis.com",
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# --- Network: private nodes reach the internet (Docker Hub, PyPI) through Cloud NAT only ---------

resource "google_compute_network" "vpc" {
  name                    = "${var.cluster_name}-vpc"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

# Explicit last-resort deny (GKE adds its own allow rules for the control plane and load balancers at
# higher priority); logged, so unexpected traffic shows up.
resource "google_compute_firewall" "deny_ingress" {
  name      = "${var.cluster_name}-deny-ingress"
  network   = google_compute_network.vpc.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "EXCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "nodes" {
  name                     = "${var.cluster_name}-nodes"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = "10.10.0.0/20"
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = "10.20.0.0/14"
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = "10.24.0.0/20"
  }

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "nat" {
  name    = "${var.cluster_name}-router"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# --- Service accounts -----------------------------------------------------------------------------

# Nodes run as a minimal account (not the Compute default with Editor).
resource "google_service_account" "nodes" {
  account_id   = "${var.cluster_name}-nodes"
  display_name = "GKE nodes of ${var.cluster_name}"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "nodes" {
  for_each = toset(local.node_roles)
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.nodes.email}"
}

# Two identities through Workload Identity, no key files, each with only the bucket (no project roles,
# no Artifact Registry writer: images are built and pushed from a workstation by `make image`).
# - trials: the runs' pods (chart KSA <release>-polyaxon-runs-sa). The chart gives the runs and the agent
#   KSA the same annotation (agent.serviceAccountAnnotations), so the agent maps to this account too.
resource "google_service_account" "trials" {
  account_id   = "${var.cluster_name}-trials"
  display_name = "LMAO trials (Polyaxon runs and agent)"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account_iam_member" "trials_workload_identity" {
  for_each           = toset([local.polyaxon_runs_ksa, local.polyaxon_agent_ksa])
  service_account_id = google_service_account.trials.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${var.polyaxon_namespace}/${each.value}]"
  depends_on         = [google_container_cluster.main] # the identity pool exists once the cluster does
}

# - platform: Polyaxon's API, streams (uploads of `polyaxon run -u`, logs and artifacts in the UI) and
#   gateway, which run as the namespace's default KSA (annotated below: the chart does not create it).
resource "google_service_account" "platform" {
  account_id   = "${var.cluster_name}-polyaxon"
  display_name = "Polyaxon API and streams"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account_iam_member" "platform_workload_identity" {
  service_account_id = google_service_account.platform.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${var.polyaxon_namespace}/${local.polyaxon_platform_ksa}]"
  depends_on         = [google_container_cluster.main]
}

# --- Cluster --------------------------------------------------------------------------------------

resource "google_container_cluster" "main" {
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Google Workspace domain; access is by IAM (container.developer) here.
  #checkov:skip=CKV_GCP_69:checkov reads only a cluster-level node_config; the default-pool node_pool block and every google_container_node_pool set workload_metadata_config GKE_METADATA.
  #checkov:skip=CKV_GCP_66:Binary Authorization needs attestors/policies per image; jobs only run our image from our private registry.
  name                = var.cluster_name
  location            = var.zone
  network             = google_compute_network.vpc.id
  subnetwork          = google_compute_subnetwork.nodes.id
  deletion_protection = var.deletion_protection
  resource_labels     = var.labels

  # Node pools are separate resources below; the default pool is deleted right after creation. As in
  # terraform-google-modules/kubernetes-engine (v44.2.0, modules/private-cluster/cluster.tf): a
  # "default-pool" node_pool block configures that short-lived pool, and lifecycle.ignore_changes on
  # node_pool keeps later plans from replacing the cluster over it (a cluster-level node_config is
  # ForceNew in the provider and can plan a cluster replacement).
  remove_default_node_pool = true
  initial_node_count       = 1

  node_pool {
    name               = "default-pool"
    initial_node_count = 1
    management {
      auto_repair  = true
      auto_upgrade = true
    }
    node_config {
      service_account = google_service_account.nodes.email
      oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
      image_type      = "COS_CONTAINERD"
      metadata        = { disable-legacy-endpoints = "true" }

      workload_metadata_config {
        mode = "GKE_METADATA"
      }
      shielded_instance_config {
        enable_secure_boot          = true
        enable_integrity_monitoring = true
      }
    }
  }

  # Node upgrades and repairs only in this window (UTC), so a sweep is not drained mid-run on a weekday.
  maintenance_policy {
    recurring_window {
      start_time = var.maintenance_start_time
      end_time   = var.maintenance_end_time
      recurrence = var.maintenance_recurrence
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false # kubectl/helm from authorized networks below
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  # No basic auth (removed from GKE) and no client certificate: only IAM-authenticated access.
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # Dataplane V2 enforces NetworkPolicy; the legacy Calico switch stays off.
  datapath_provider = "ADVANCED_DATAPATH"
  network_policy {
    enabled = false
  }

  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  enable_legacy_abac          = false
  logging_service             = "logging.googleapis.com/kubernetes"
  monitoring_service          = "monitoring.googleapis.com/kubernetes"

  # Scale idle experiment nodes down quickly: they are the expensive part.
  cluster_autoscaling {
    enabled             = false # no node auto-provisioning: only the node pools defined below
    autoscaling_profile = "OPTIMIZE_UTILIZATION"
  }

  addons_config {
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
  }

  lifecycle {
    ignore_changes = [node_pool, initial_node_count]
  }

  depends_on = [google_project_service.apis, google_compute_router_nat.nat]
}

resource "google_container_node_pool" "pools" {
  for_each = local.pools

  name     = each.key
  cluster  = google_container_cluster.main.id
  location = var.zone

  initial_node_count = each.value.min_nodes
  autoscaling {
    min_node_count  = each.value.min_nodes
    max_node_count  = each.value.max_nodes
    location_policy = each.value.spot ? "ANY" : "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = each.value.machine_type
    spot            = each.value.spot
    disk_size_gb    = var.node_disk_size_gb
    disk_type       = "pd-balanced"
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    metadata        = { disable-legacy-endpoints = "true" }
    labels          = merge(var.labels, { "lmao/pool" = each.key })

    dynamic "taint" {
      for_each = each.value.taints
      content {
        key    = taint.value.key
        value  = taint.value.value
        effect = taint.value.effect
      }
    }

    # Image streaming for the large CUDA image: trial pods start before the whole image is pulled.
    dynamic "gcfs_config" {
      for_each = each.value.gpus > 0 ? [true] : []
      content {
        enabled = true
      }
    }

    # GKE installs the NVIDIA driver itself (no DaemonSet to manage). With gpu_trials_per_gpu > 1, GKE
    # GPU time-sharing advertises that many nvidia.com/gpu per physical GPU, so that many trial pods (each
    # asking for one) share it. Schema of hashicorp/google 6.50 (versions.tf allows >= 5, < 7), from the
    # provider's google/services/container/node_config.go: guest_accelerator.gpu_sharing_config
    # { gpu_sharing_strategy (string, required), max_shared_clients_per_gpu (int, required) }, both
    # ForceNew: changing them replaces the GPU pool (empty between sweeps: it scales to 0).
    dynamic "guest_accelerator" {
      for_each = each.value.gpus > 0 ? [each.value.gpus] : []
      content {
        type  = var.gpu_type
        count = guest_accelerator.value
        gpu_driver_installation_config {
          gpu_driver_version = "LATEST"
        }
        dynamic "gpu_sharing_config" {
          for_each = var.gpu_trials_per_gpu > 1 ? [var.gpu_trials_per_gpu] : []
          content {
            gpu_sharing_strategy       = "TIME_SHARING"
            max_shared_clients_per_gpu = gpu_sharing_config.value
          }
        }
      }
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    ignore_changes = [initial_node_count]
  }
}

# --- Bucket: Polyaxon artifacts, trial outputs, caches --------------------------------------------

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access logs would need a second bucket (which itself trips this check); Cloud Audit Logs cover data access when enabled.
  name                        = local.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.bucket_force_destroy
  labels                      = var.labels

  # Versioning guards results against accidental overwrite/delete; old versions expire below.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = var.scratch_retention_days
      matches_prefix = ["scratch/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# objectAdmin on this bucket only: create, read, delete with generation preconditions (trials: atomic
# publish, cache locks; platform: uploads, run outputs and logs under polyaxon/).
resource "google_storage_bucket_iam_member" "trials" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.trials.email}"
}

resource "google_storage_bucket_iam_member" "platform" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.platform.email}"
}

# --- Image registry -------------------------------------------------------------------------------

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Customer-managed keys add a KMS key ring to run and pay for; the image holds code only, no data or secrets (Google-managed encryption applies).
  repository_id = var.artifact_repository
  location      = var.region
  format        = "DOCKER"
  description   = "LMAO experiment images"
  labels        = var.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "drop-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.apis]
}

# --- Polyaxon -------------------------------------------------------------------------------------

resource "random_password" "postgres" {
  length  = 24
  special = false
}

resource "helm_release" "polyaxon" {
  name             = local.polyaxon_release
  repository       = "https://charts.polyaxon.com"
  chart            = "polyaxon"
  version          = var.polyaxon_chart_version
  namespace        = var.polyaxon_namespace
  create_namespace = true
  timeout          = 900

  values = [templatefile("${path.module}/polyaxon-values.yaml.tftpl", {
    bucket            = google_storage_bucket.artifacts.name
    trials_gsa        = google_service_account.trials.email
    gateway_service   = local.polyaxon_gateway_svc
    namespace         = var.polyaxon_namespace
    postgres_password = random_password.postgres.result
    ingress           = local.ingress
    ingress_host      = var.polyaxon_ingress_host
    ingress_ip_name   = local.ingress ? google_compute_global_address.polyaxon[0].name : ""
    ingress_cert_name = local.ingress ? google_compute_managed_ssl_certificate.polyaxon[0].name : ""
    store_key_secret  = var.polyaxon_store_key_secret
  })]

  depends_on = [google_container_node_pool.pools, google_storage_bucket_iam_member.trials]
}

# The runs and agent KSAs get their Workload Identity annotation from the chart (runs-sa.yaml and
# agent-sa.yaml include agent.serviceAccountAnnotations). The namespace's default KSA, which the API,
# streams and gateway pods run as, is Kubernetes' own: annotate it here.
resource "kubernetes_annotations" "platform_sa" {
  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = local.polyaxon_platform_ksa
    namespace = var.polyaxon_namespace
  }
  annotations = {
    "iam.gke.io/gcp-service-account" = google_service_account.platform.email
  }
  depends_on = [helm_release.polyaxon] # the release creates the namespace
}

# Polyaxon CE has no authentication: whoever reaches its API may do anything. Only Polyaxon's own pods
# (chart label app.kubernetes.io/part-of=polyaxon-core) and, with the HTTPS ingress, Google's load
# balancers may open connections to them; trial pods (and anything else in the cluster) may not.
# `kubectl port-forward` goes through the kubelet and is not affected. Dataplane V2 enforces this.
# The TPE tuner (polyaxonfile.tpe.yml, experiments/polyaxon/tuner.py) is a run whose pod carries the label
# lmao/role=tuner: it may connect, since it launches, follows and stops the trials through the API; the
# trials it launches carry no such label and stay cut off. Whoever can create runs can set that label, but
# creating runs already takes the API.
# With polyaxon_runs_reach_api = true trial pods may call the API too: needed only for the bayes
# polyaxonfiles, whose scheduler reads each trial's best_dev_score output, which the trial logs via the API.
resource "kubernetes_network_policy_v1" "polyaxon_api" {
  metadata {
    name      = "polyaxon-core-ingress"
    namespace = var.polyaxon_namespace
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/part-of" = "polyaxon-core" }
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        pod_selector {
          match_labels = { "app.kubernetes.io/part-of" = "polyaxon-core" }
        }
      }
      from {
        pod_selector {
          match_labels = { "lmao/role" = "tuner" }
        }
      }
    }
    dynamic "ingress" {
      for_each = var.polyaxon_runs_reach_api ? [true] : []
      content {
        from {
          pod_selector {}
        }
      }
    }
    dynamic "ingress" {
      for_each = local.ingress ? [true] : []
      content {
        from {
          ip_block {
            cidr = "130.211.0.0/22" # Google Cloud load balancers and health checks
          }
        }
        from {
          ip_block {
            cidr = "35.191.0.0/16"
          }
        }
      }
    }
  }
  depends_on = [helm_release.polyaxon]
}

# --- Optional HTTPS ingress for the UI (polyaxon_ingress_host set) ---------------------------------

resource "google_compute_global_address" "polyaxon" {
  count      = local.ingress ? 1 : 0
  name       = "${var.cluster_name}-polyaxon"
  depends_on = [google_project_service.apis]
}

resource "google_compute_managed_ssl_certificate" "polyaxon" {
  count = local.ingress ? 1 : 0
  name  = "${var.cluster_name}-polyaxon"
  managed {
    domains = [var.polyaxon_ingress_host]
  }
}

# Polyaxon CE has no login: only the listed source ranges get through the load balancer.
resource "google_compute_security_policy" "polyaxon" {
  count = local.ingress ? 1 : 0
  name  = "${var.cluster_name}-polyaxon-allowlist"

  # Log4Shell probes are dropped even from allowed ranges (cheap, and nothing legitimate sends them).
  rule {
    action   = "deny(403)"
    priority = 900
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('cve-canary')"
      }
    }
    description = "CVE-2021-44228 (Log4Shell)"
  }

  rule {
    action   = "allow"
    priority = 1000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = var.polyaxon_ingress_allowed_cidrs
      }
    }
    description = "Allowed source ranges"
  }

  rule {
    action   = "deny(403)"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    description = "Everyone else"
  }

  lifecycle {
    precondition {
      condition     = length(var.polyaxon_ingress_allowed_cidrs) > 0
      error_message = "polyaxon_ingress_host is set: also set polyaxon_ingress_allowed_cidrs (Polyaxon CE has no login)."
    }
  }
}

# Attaches the Cloud Armor policy to the gateway Service's load-balancer backend.
resource "kubernetes_manifest" "polyaxon_backend_config" {
  count = local.ingress ? 1 : 0
  manifest = {
    apiVersion = "cloud.google.com/v1"
    kind       = "BackendConfig"
    metadata = {
      name      = "polyaxon-gateway"
      namespace = var.polyaxon_namespace
    }
    spec = {
      securityPolicy = { name = google_compute_security_policy.polyaxon[0].name }
      healthCheck    = { type = "HTTP", requestPath = "/healthz/", port = 8000 }
      timeoutSec     = 600 # large `polyaxon run -u` uploads and artifact downloads (default 30 s)
    }
  }
  depends_on = [helm_release.polyaxon]
}
