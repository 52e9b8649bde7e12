// Command validate checks auditline's deployment artifacts without a
// container runtime or a Kubernetes cluster (scripts/deploy-check.sh runs it
// in CI):
//
//   - the Helm chart (deploy/helm/auditline) is linted and rendered with a
//     pinned helm for several value sets, and every rendered object is
//     decoded strictly with the Kubernetes API types (k8s.io/api; an unknown
//     or duplicated field, or an unknown kind, fails), then checked for what
//     the chart promises: one workload per stage, readiness and liveness on
//     /readyz and /healthz, a metrics port, non-root read-only containers
//     without capabilities, secrets only from Secrets, references (ConfigMap,
//     Secret, Service selectors, named ports) that resolve, and a config that
//     auditline itself loads (`auditline config`, unknown keys are errors);
//   - the compose file (deploy/compose) is loaded by compose-go, which
//     validates it against the Compose specification's JSON schema, and its
//     auditline services are checked the same way;
//   - the Dockerfiles are parsed and linted by BuildKit's own Dockerfile
//     front end (every lint warning fails), their final stages must run as a
//     numeric non-root user, and the versions they pin must agree with
//     deploy/local/lib.sh;
//   - the binary, built as the Dockerfile builds it, must be a static ELF
//     (the runtime image has no libc);
//   - the systemd units pass `systemd-analyze verify` (with the TLS drop-in
//     auditline-tls.conf) and stay under an exposure threshold of
//     `systemd-analyze security --offline`;
//   - transport security (transport.go), for the chart with
//     testdata/values-tls.yaml, compose.tls.yaml over compose.yaml and the
//     units with auditline-tls.conf: every TLS file the configuration names
//     is under a secret mount of the process, every password comes from a
//     secret, the dashboard has its own ClickHouse user and not the store's
//     password, and `auditline config --validate` accepts the transport
//     settings with placeholder files and secrets in place.
//
// It is its own Go module so that the Kubernetes, Compose and BuildKit
// libraries (tens of modules) stay out of auditline's go.mod and out of the
// binary's dependency graph; nothing in the main module imports it.
package main
