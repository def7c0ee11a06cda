package deploy

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

const root = ".."

// loadCompose loads compose.yaml the way `docker compose` does, with the
// given profiles, and with compose-go's consistency checks (unknown
// services, bad network_mode and depends_on targets).
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeFile(t, filepath.Join(root, "compose.yaml"), profiles...)
}

// loadComposeFile loads file as `docker compose -f file` does, its
// directory the project's.
func loadComposeFile(t *testing.T, file string, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeFileEnv(t, file, []string{}, profiles...)
}

// loadComposeFileEnv loads file with env as its only environment.
func loadComposeFileEnv(t *testing.T, file string, env []string, profiles ...string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithProfiles(profiles), cli.WithConsistency(true),
		cli.WithResolvedPaths(true), cli.WithInterpolation(true),
		// Not the caller's environment: the file's own defaults are under test.
		cli.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s (profiles %v): %v", file, profiles, err)
	}
	return p
}

// suiteImage reports whether a service runs one of the suite's binaries:
// the image built from the repository's root (api-docs builds another).
func suiteImage(s types.ServiceConfig) bool {
	abs, _ := filepath.Abs(root)
	return s.Build != nil && s.Build.Context == abs
}

// oneShot services run to completion (probe-init, k6) and need no healthcheck.
func oneShot(s types.ServiceConfig) bool {
	return s.Restart == "no" || slices.Contains(s.Profiles, "load")
}

func TestComposeLoadsWithEveryProfile(t *testing.T) {
	def := loadCompose(t)
	all := loadCompose(t, "*")
	if _, ok := def.Services["k6"]; ok {
		t.Error("k6 runs by default: it belongs to the load profile")
	}
	if _, ok := all.Services["k6"]; !ok {
		t.Error("the load profile has no k6 service")
	}
	// README: the full stack.
	for _, name := range []string{"kafka", "postgres", "etcd", "psp", "orders", "payments", "inventory-1", "inventory-2",
		"sidecar-orders", "sidecar-payments", "sidecar-inventory-1", "sidecar-inventory-2",
		"otel-collector", "tempo", "loki", "prometheus", "pyroscope", "grafana"} {
		if _, ok := def.Services[name]; !ok {
			t.Errorf("the default stack has no %s", name)
		}
	}
}

// Healthchecks and dependencies: one `up` converges without restarts.
func TestComposeHealthchecksAndDependencies(t *testing.T) {
	p := loadCompose(t, "*")
	for name, s := range p.Services {
		if !oneShot(s) && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s runs for good but has no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			target := p.Services[dep]
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || len(target.HealthCheck.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if !oneShot(target) {
					t.Errorf("%s waits for %s to complete, which runs for good", name, dep)
				}
			case types.ServiceConditionStarted:
				// Only a sidecar may merely follow its instance (it shares the network).
				if s.NetworkMode != "service:"+dep {
					t.Errorf("%s depends on %s without waiting for its health", name, dep)
				}
			}
		}
		if strings.HasPrefix(s.NetworkMode, "service:") && len(s.Ports) > 0 {
			t.Errorf("%s shares %s's network and publishes ports: Docker refuses that", name, s.NetworkMode)
		}
		// A probe healthcheck needs the probe: the suite's image, or the volume.
		if hc := s.HealthCheck; hc != nil && len(hc.Test) > 1 && strings.HasPrefix(hc.Test[1], "/opt/probe/") && !suiteImage(s) {
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Source == "probe" && v.Target == "/opt/probe" }) {
				t.Errorf("%s's healthcheck runs /opt/probe/probe, but it does not mount the probe volume", name)
			}
			if s.DependsOn["probe-init"].Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s uses the probe volume before probe-init has filled it", name)
			}
		}
	}
}

// The default stack's memory limits add up to at most 3 GiB, and every
// service has one.
func TestComposeMemoryLimits(t *testing.T) {
	var total int64
	for name, s := range loadCompose(t).Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s has no memory limit", name)
			continue
		}
		total += int64(s.Deploy.Resources.Limits.MemoryBytes)
	}
	t.Logf("default stack memory limits: %d MiB", total>>20)
	if total > 3<<30 {
		t.Errorf("memory limits add up to %d MiB, over 3 GiB", total>>20)
	}
	for name, s := range loadCompose(t, "*").Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s has no memory limit", name)
		}
	}
}

// Exact image tags (those an image is built from too), and every file a
// service mounts exists.
func TestComposeImagesAndMounts(t *testing.T) {
	for name, s := range loadCompose(t, "*").Services {
		if s.Build != nil && !suiteImage(s) {
			df, err := os.ReadFile(filepath.Join(s.Build.Context, "Dockerfile"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, m := range regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(df), -1) {
				if _, tag, ok := strings.Cut(m[1], ":"); !ok || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
					t.Errorf("%s is built FROM %q, which has no exact tag", name, m[1])
				}
			}
		}
		if s.Build == nil {
			_, tag, ok := strings.Cut(s.Image[strings.LastIndex(s.Image, "/")+1:], ":")
			if !ok || tag == "" || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
				t.Errorf("%s: image %q has no exact tag", name, s.Image)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// Ports on localhost as README's table lists them.
func TestComposePortsFollowTheContract(t *testing.T) {
	want := map[string][]string{
		"orders": {"8081"}, "payments": {"8082"}, "inventory-1": {"8083"}, "inventory-2": {"8084"}, "psp": {"8090"},
		"kafka": {"9092"}, "etcd": {"2379"}, "grafana": {"3000"}, "prometheus": {"9090"}, "pyroscope": {"4040"},
		"loki": {"3100"}, "otel-collector": {"4317", "4318"},
	}
	p := loadCompose(t, "*")
	for name, ports := range want {
		var got []string
		for _, pc := range p.Services[name].Ports {
			if pc.Published != strconv.Itoa(int(pc.Target)) {
				t.Errorf("%s publishes %s for container port %d: the contract uses the same port on both sides", name, pc.Published, pc.Target)
			}
			got = append(got, pc.Published)
		}
		slices.Sort(got)
		if !slices.Equal(got, ports) {
			t.Errorf("%s publishes %v, want %v", name, got, ports)
		}
	}
	// A suite process listens where its healthcheck and the port mapping look.
	for name, s := range p.Services {
		if !suiteImage(s) || s.Environment["HTTP_ADDR"] == nil {
			continue
		}
		port := strings.TrimPrefix(*s.Environment["HTTP_ADDR"], ":")
		if hc := strings.Join(s.HealthCheck.Test, " "); !strings.Contains(hc, "localhost:"+port+"/") {
			t.Errorf("%s listens on %s but its healthcheck is %q", name, port, hc)
		}
	}
}

// binaries maps the commands the image runs to their packages.
var binaries = map[string]string{
	"localsecrets": "./platform/cmd/localsecrets",
	"orders":       "./services/orders/cmd/orders",
	"payments":     "./services/payments/cmd/payments",
	"psp":          "./services/payments/cmd/psp",
	"inventory":    "./services/inventory/cmd/inventory",
	"sidecar":      "./platform/cmd/sidecar",
	"probe":        "./platform/cmd/probe",
}

// sdkEnv are read by the OpenTelemetry SDK and the Go runtime, not by the
// suite's code.
func sdkEnv(name string) bool {
	return strings.HasPrefix(name, "OTEL_") || slices.Contains([]string{"GOMEMLIMIT", "GOGC", "GOMAXPROCS", "GODEBUG"}, name)
}

// Every variable compose gives a suite process is one its binary reads (a
// misspelt name would be silently ignored), and every variable the binary
// requires is given.
func TestComposeEnvironmentMatchesTheBinaries(t *testing.T) {
	for name, s := range loadCompose(t, "*").Services {
		if !suiteImage(s) {
			continue
		}
		given := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				given[k] = *v
			}
		}
		checkEnv(t, "compose.yaml: "+name, s.Command, given, nil)
	}
}

// The scanner finds what the code reads: if it found nothing, the test
// above would pass for any compose file.
func TestScanEnvFindsWhatTheCodeReads(t *testing.T) {
	use, err := ScanEnv(root, "./services/payments/cmd/psp")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"HTTP_ADDR", "ADMIN_TOKEN", "ADMIN_TOKEN_FILE", "ADMIN_ADDR", "PSP_KEY_FILE", "PYROSCOPE_SERVER_ADDRESS", "LOG_LEVEL"} {
		if !use.Reads[v] {
			t.Errorf("psp reads %s, the scan did not find it (found %v)", v, slices.Sorted(maps.Keys(use.Reads)))
		}
	}
	if !use.Required["ADMIN_TOKEN"] || use.Required["HTTP_ADDR"] || use.Required["PSP_KEY_FILE"] {
		t.Errorf("required: %v", use.Required)
	}
	if use.Reads["INVENTORY_URL"] {
		t.Error("psp does not read INVENTORY_URL (orders does)")
	}
}

// k6 silently drops a script's scenarios when K6_VUS, K6_DURATION,
// K6_ITERATIONS or K6_STAGES are set; the script it runs must exist.
func TestComposeK6(t *testing.T) {
	k6 := loadCompose(t, "load").Services["k6"]
	for v := range k6.Environment {
		if slices.Contains([]string{"K6_VUS", "K6_DURATION", "K6_ITERATIONS", "K6_STAGES"}, v) {
			t.Errorf("k6 has %s in its environment", v)
		}
	}
	// Each run its own test id (the k6 dashboard's variable): the scenario's name by default.
	if !slices.Contains(k6.Command, "testid=average") {
		t.Errorf("k6 tags its samples %v; want testid=<scenario> unless K6_TESTID is set", k6.Command)
	}
	script := k6.Command[len(k6.Command)-1]
	if !strings.HasPrefix(script, "/loadtest/") {
		t.Fatalf("k6 runs %s, not a script from the mounted loadtest folder", script)
	}
	if _, err := os.Stat(filepath.Join(root, script)); err != nil {
		t.Errorf("k6 runs %s: %v", script, err)
	}
}

// Tempo's and Loki's own validators are AGPL and not used here: check at
// least that their files parse and that every host they send to is a
// compose service.
func TestBackendConfigsParseAndNameComposeServices(t *testing.T) {
	p := loadCompose(t)
	hostRE := regexp.MustCompile(`https?://([a-z0-9-]+):\d+`)
	for _, f := range []string{"compose/tempo.yaml", "compose/loki.yaml", "collector/otel-collector.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc) == 0 {
			t.Errorf("%s does not parse: %v", f, err)
		}
		for _, m := range hostRE.FindAllStringSubmatch(string(raw), -1) {
			if _, ok := p.Services[m[1]]; !ok {
				t.Errorf("%s sends to %s, not a compose service", f, m[0])
			}
		}
	}
	for k, v := range p.Services["otel-collector"].Environment {
		host, _, _ := strings.Cut(strings.TrimPrefix(*v, "http://"), ":")
		if _, ok := p.Services[host]; strings.HasSuffix(k, "_ENDPOINT") && !ok {
			t.Errorf("the Collector's %s=%s is not a compose service", k, *v)
		}
	}
}

// Nothing is published on every interface by default: the suite (with
// its admin routes), Kafka and etcd (which authenticate no one) and
// Grafana are reachable from this machine only, unless BIND_ADDRESS opens
// them, all at once.
func TestComposePublishesOnLoopbackUnlessOpened(t *testing.T) {
	for _, file := range []string{"compose.yaml", "deploy/compose/observability.yaml"} {
		published := 0
		for name, s := range loadComposeFile(t, filepath.Join(root, file), "load").Services {
			for _, p := range s.Ports {
				published++
				if p.HostIP != "127.0.0.1" {
					t.Errorf("%s: %s publishes %s on %q by default, want 127.0.0.1", file, name, p.Published, p.HostIP)
				}
			}
		}
		if published < 5 {
			t.Fatalf("%s: only %d ports published: is the file loaded?", file, published)
		}
		opened := loadComposeFileEnv(t, filepath.Join(root, file), []string{"BIND_ADDRESS=0.0.0.0"}, "load")
		for name, s := range opened.Services {
			for _, p := range s.Ports {
				if p.HostIP != "0.0.0.0" {
					t.Errorf("%s: with BIND_ADDRESS=0.0.0.0, %s still publishes %s on %q", file, name, p.Published, p.HostIP)
				}
			}
		}
	}
	// And the admin token is nobody's default: read from the file the
	// one-shot secrets writes, never a literal.
	p := loadCompose(t, "load")
	for name, s := range p.Services {
		if v := s.Environment["ADMIN_TOKEN"]; v != nil && *v != "" {
			t.Errorf("%s: ADMIN_TOKEN defaults to %q", name, *v)
		}
	}
	if role := p.Services["grafana"].Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"]; role == nil || *role != "Viewer" {
		t.Errorf("Grafana's anonymous users are %v, want Viewer", role)
	}
}

// psp is reached over TLS with the stack's own CA: psp serves the
// certificate the one-shot secrets issues (for the name psp), orders and
// payments call https://psp with that CA alone, and every process and
// scraper that talks to psp does so over https.
func TestComposeReachesPspOverTLS(t *testing.T) {
	p := loadCompose(t, "load")
	env := func(svc, k string) string {
		if v := p.Services[svc].Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	secrets := p.Services["secrets"]
	if !slices.Contains(secrets.Command, "-tls") || !strings.Contains(strings.Join(secrets.Command, " "), "psp") {
		t.Fatalf("the one-shot secrets issues no certificate for psp: %v", secrets.Command)
	}
	if env("psp", "TLS_CERT_FILE") != "/run/sagasuite/tls/psp.pem" || env("psp", "TLS_KEY_FILE") != "/run/sagasuite/tls/psp-key.pem" {
		t.Errorf("psp does not serve the stack's certificate")
	}
	for _, svc := range []string{"orders", "payments"} {
		if !strings.HasPrefix(env(svc, "PSP_URL"), "https://psp:") || env(svc, "PSP_CA_FILE") != "/run/sagasuite/tls/ca.pem" {
			t.Errorf("%s calls psp at %q trusting %q", svc, env(svc, "PSP_URL"), env(svc, "PSP_CA_FILE"))
		}
	}
	if hc := strings.Join(p.Services["psp"].HealthCheck.Test, " "); !strings.Contains(hc, "-ca /run/sagasuite/tls/ca.pem https://") {
		t.Errorf("psp's healthcheck %q does not speak https with the CA", hc)
	}
	prom, err := os.ReadFile(filepath.Join(root, "prometheus", "prometheus.compose.yml"))
	if err != nil || !strings.Contains(string(prom), "scheme: https") || !strings.Contains(string(prom), "ca_file: /run/sagasuite/tls/ca.pem") {
		t.Errorf("Prometheus does not scrape psp over https with the CA")
	}
}
