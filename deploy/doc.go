// Package deploy holds what runs the suite outside `make dev`: the build
// command every image and binary comes from (build.sh), the compose
// stack's configuration (compose/, with compose.yaml at the repository
// root), the Collector's (collector/), the Kubernetes manifests (k8s/),
// and the tests that check these files on a machine without a Docker
// engine or a cluster:
//
//   - compose.yaml loads with compose-go (every profile, consistency on);
//     every variable it gives a suite process is one that binary reads, and
//     every variable a binary requires is given; healthchecks, memory
//     limits, mounts, image tags and ports (README's table);
//   - the Collector configuration is validated by the Collector's own
//     configuration code;
//   - Grafana provisioning: every datasource uid that a dashboard or a link
//     names is provisioned; the dashboards folder is the one compose mounts;
//   - both Kubernetes overlays render, decode strictly into their API types
//     and custom-resource fields, and match the binaries, README's ports,
//     the hardening rules and the dependencies' settings.
package deploy
