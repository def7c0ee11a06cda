package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// What the README tells a user about `docker compose up` is what
// compose.yaml does: the command waits for health, the footprint counts
// the containers and memory limits the file declares, what `down` keeps
// matches its named volumes, and every port of the table is published.
func TestReadmeDescribesTheComposeStack(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	flat := strings.Join(strings.Fields(readme), " ") // phrases wrap across lines
	p := loadCompose(t)

	up := regexp.MustCompile("(?m)^docker compose up[^\n#]*").FindString(readme)
	if !strings.Contains(up, "--wait") || !strings.Contains(up, "--build") {
		t.Errorf("the README's first compose command is %q: without --wait it returns before anything is healthy, without --build it runs a stale image", up)
	}

	var running, oneShots []string
	var limits int64
	for name, s := range p.Services {
		if oneShot(s) {
			oneShots = append(oneShots, name)
		} else {
			running = append(running, name)
		}
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
			limits += int64(s.Deploy.Resources.Limits.MemoryBytes)
		}
	}
	if m := regexp.MustCompile(`Footprint: (\d+) containers`).FindStringSubmatch(flat); m == nil || m[1] != strconv.Itoa(len(running)) {
		t.Errorf("README's footprint says %v containers; compose.yaml runs %d for good: %v", m, len(running), running)
	}
	for _, name := range oneShots {
		if !strings.Contains(flat, "one-shot `"+name+"`") {
			t.Errorf("README's footprint does not name the one-shot %s", name)
		}
	}
	gib := fmt.Sprintf("%.1f GiB", float64(limits)/(1<<30))
	if !strings.Contains(flat, "memory limits adding up to "+gib) {
		t.Errorf("README's footprint should say the memory limits add up to %s", gib)
	}

	if len(p.Volumes) > 0 {
		if strings.Contains(strings.ToLower(flat), "nothing is kept") {
			t.Errorf("README says nothing is kept between runs; compose.yaml has named volumes %v, which `down` keeps", slices.Sorted(func(yield func(string) bool) {
				for v := range p.Volumes {
					if !yield(v) {
						return
					}
				}
			}))
		}
		if !strings.Contains(readme, "docker compose down -v") {
			t.Error("README does not say how to forget the named volumes (docker compose down -v)")
		}
	}

	published := map[string]bool{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			published[port.Published] = true
		}
	}
	table := regexp.MustCompile("(?m)^\\| on localhost \\| what \\|\n\\| --- \\| --- \\|\n((?:\\|.*\\|\n)+)").FindStringSubmatch(readme)
	if table == nil {
		t.Fatal("README has no table of the ports on localhost")
	}
	for _, row := range strings.Split(strings.TrimSpace(table[1]), "\n") {
		ports := strings.Split(row, "|")[1]
		for _, port := range regexp.MustCompile(`\d{4,5}`).FindAllString(ports, -1) {
			if !published[port] {
				t.Errorf("README lists port %s on localhost, which compose.yaml does not publish", port)
			}
		}
	}
}
