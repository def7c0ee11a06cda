package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// workflowRuns reads a GitHub workflow and returns the run scripts of its
// steps, in order, all jobs together (actionlint checks the syntax; this
// checks what they do).
func workflowRuns(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run string            `json:"run"`
				Env map[string]string `json:"env"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			for k, v := range s.Env {
				b.WriteString(k + "=" + v + " ")
			}
			b.WriteString(s.Run + "\n")
		}
	}
	return b.String()
}

// ci.yml is .ci/run; compose.yml brings the stack up as the README says,
// loads it with k6's smoke scenario and runs stackcheck inside the network
// compose.yaml makes, on the image it builds.
func TestWorkflowsDoWhatTheDocsSay(t *testing.T) {
	if runs := workflowRuns(t, "ci.yml"); !strings.Contains(runs, ".ci/run") {
		t.Errorf("ci.yml does not run .ci/run:\n%s", runs)
	}
	runs := workflowRuns(t, "compose.yml")
	p := loadCompose(t)
	for _, want := range []string{
		"docker compose up --wait",
		"K6_SCENARIO=smoke", "--profile load run --rm k6",
		"--network " + p.Name + "_default", // compose's default network of the project
		p.Services["orders"].Image,         // the image compose just built
		"./platform/cmd/stackcheck", "-tempo http://tempo:3200", "-loki http://loki:3100",
		"-pyroscope http://pyroscope:4040", "-grafana http://grafana:3000", "-prometheus http://prometheus:9090",
		"docker stats --no-stream", "down -v",
		"http://localhost:8088/", // the api-docs service
	} {
		if !strings.Contains(runs, want) {
			t.Errorf("compose.yml never runs %q", want)
		}
	}
	if _, ok := loadCompose(t, "load").Services["k6"]; !ok {
		t.Error("compose.yaml's load profile has no k6 service for the workflow to run")
	}
	if _, err := os.Stat(filepath.Join(root, "loadtest", "k6", "smoke.js")); err != nil {
		t.Errorf("the workflow runs the smoke scenario: %v", err)
	}
}
