package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// The backends of compose.yaml, alone for make dev.
var backendServices = []string{"otel-collector", "tempo", "loki", "prometheus", "pyroscope", "grafana"}

// deploy/compose/observability.yaml runs compose.yaml's observability
// backends, with their images and configuration, and nothing built: only
// the probe (which needs the suite's image) and the Prometheus jobs differ.
func TestObservabilityStackIsComposesBackends(t *testing.T) {
	obs := loadComposeFile(t, "compose/observability.yaml")
	full := loadCompose(t)
	if names := slices.Sorted(func(yield func(string) bool) {
		for n := range obs.Services {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(names, slices.Sorted(slices.Values(backendServices))) {
		t.Fatalf("services %v, want the backends %v", names, backendServices)
	}
	promHost, _ := filepath.Abs(filepath.Join(root, "prometheus", "prometheus.host.yml"))
	for name, s := range obs.Services {
		f := full.Services[name]
		if s.Build != nil || s.Image != f.Image {
			t.Errorf("%s: image %q (built: %v), compose.yaml runs %q", name, s.Image, s.Build != nil, f.Image)
		}
		if !slices.Equal(s.Command, f.Command) {
			t.Errorf("%s: command %v, compose.yaml's is %v", name, s.Command, f.Command)
		}
		for k, v := range f.Environment {
			if strings.HasPrefix(k, "GF_SECURITY_ADMIN_PASSWORD") {
				continue // no admin-token service here: its own password
			}
			if got := s.Environment[k]; got == nil || v == nil || *got != *v {
				t.Errorf("%s: %s differs from compose.yaml's", name, k)
			}
		}
		mounts := map[string]string{}
		for _, v := range s.Volumes {
			mounts[v.Target] = v.Source
		}
		for _, v := range f.Volumes {
			want := v.Source
			if v.Target == "/opt/probe" || v.Target == "/run/sagasuite" {
				continue
			}
			if name == "prometheus" && v.Target == "/etc/prometheus/prometheus.yml" {
				want = promHost
			}
			if mounts[v.Target] != want {
				t.Errorf("%s: mounts %q at %s, want %q", name, mounts[v.Target], v.Target, want)
			}
		}
		for _, p := range s.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s: publishes %s on %q: the loopback interface only", name, p.Published, p.HostIP)
			}
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes != f.Deploy.Resources.Limits.MemoryBytes {
			t.Errorf("%s: memory limit differs from compose.yaml's", name)
		}
	}
	// What make dev's exporters find (platform/cmd/devrun) and what a user opens.
	for _, port := range []string{"4318", "4040", "3000", "9090"} {
		if !slices.ContainsFunc(slices.Collect(func(yield func(types.ServicePortConfig) bool) {
			for _, s := range obs.Services {
				for _, p := range s.Ports {
					if !yield(p) {
						return
					}
				}
			}
		}), func(p types.ServicePortConfig) bool { return p.Published == port }) {
			t.Errorf("port %s is not published", port)
		}
	}
	if hosts := obs.Services["prometheus"].ExtraHosts["host.docker.internal"]; !slices.Contains(hosts, "host-gateway") {
		t.Errorf("prometheus cannot reach the host on Linux: extra_hosts host.docker.internal:host-gateway missing (%v)", hosts)
	}
}

// prometheus.host.yml scrapes what prometheus.dev.yml scrapes, through
// host.docker.internal instead of the loopback address.
func TestHostPrometheusScrapesMakeDev(t *testing.T) {
	type cfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	read := func(name string) cfg {
		b, err := os.ReadFile(filepath.Join(root, "prometheus", name))
		if err != nil {
			t.Fatal(err)
		}
		var c cfg // only the jobs and rules are compared
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	dev, host := read("prometheus.dev.yml"), read("prometheus.host.yml")
	if len(dev.ScrapeConfigs) == 0 || len(dev.ScrapeConfigs) != len(host.ScrapeConfigs) || !slices.Equal(dev.RuleFiles, host.RuleFiles) {
		t.Fatalf("jobs or rules differ: dev %+v, host %+v", dev, host)
	}
	for i, d := range dev.ScrapeConfigs {
		h := host.ScrapeConfigs[i]
		var want, got []string
		for _, sc := range d.StaticConfigs {
			for _, tg := range sc.Targets {
				want = append(want, strings.Replace(tg, "127.0.0.1:", "host.docker.internal:", 1))
			}
		}
		for _, sc := range h.StaticConfigs {
			got = append(got, sc.Targets...)
		}
		if d.JobName != h.JobName || !slices.Equal(want, got) {
			t.Errorf("job %s scrapes %v on the host, want %s %v", h.JobName, got, d.JobName, want)
		}
	}
}
