package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// datasource is Grafana's provisioning format, decoded strictly so that a
// misspelt key fails here rather than being ignored by Grafana.
type datasource struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	UID       string         `json:"uid"`
	Access    string         `json:"access"`
	URL       string         `json:"url"`
	IsDefault bool           `json:"isDefault"`
	Editable  bool           `json:"editable"`
	JSONData  map[string]any `json:"jsonData"`
}

func provisionedDatasources(t *testing.T) map[string]datasource {
	t.Helper()
	raw, err := os.ReadFile("compose/grafana/provisioning/datasources/datasources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		APIVersion  int          `json:"apiVersion"`
		Datasources []datasource `json:"datasources"`
	}
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		t.Fatalf("datasources.yaml: %v", err)
	}
	byUID := map[string]datasource{}
	for _, d := range file.Datasources {
		byUID[d.UID] = d
	}
	return byUID
}

// collectUIDs walks a JSON document and returns every datasourceUid and
// every datasource.uid it names.
func collectUIDs(v any, out map[string]bool) {
	switch v := v.(type) {
	case string: // a data link into Explore carries its pane as JSON
		const explore = "/explore?schemaVersion=1&orgId=1&panes="
		for _, link := range strings.Split(v, explore)[1:] {
			var pane any // the JSON value ends the link (in markdown, a ")" follows)
			if err := json.NewDecoder(strings.NewReader(strings.ReplaceAll(link, "%23", "#"))).Decode(&pane); err != nil {
				out["unparsable Explore link "+link] = true
				continue
			}
			collectUIDs(pane, out)
		}
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "datasourceUid" || (k == "datasource" && !strings.HasPrefix(s, "/"))) {
				out[s] = true
			}
			if k == "datasource" {
				if ds, ok := x.(map[string]any); ok {
					if s, ok := ds["uid"].(string); ok {
						out[s] = true
					}
				}
			}
			collectUIDs(x, out)
		}
	case []any:
		for _, x := range v {
			collectUIDs(x, out)
		}
	}
}

// The four datasources with fixed uids, linked to each other: exemplars to
// Tempo, traces to logs, metrics, profiles and the service map, log lines
// back to traces. Every uid a link names is provisioned, and each points
// at a compose service on its port.
func TestGrafanaDatasourcesAreLinked(t *testing.T) {
	ds := provisionedDatasources(t)
	for uid, typ := range map[string]string{"prometheus": "prometheus", "tempo": "tempo", "loki": "loki", "pyroscope": "grafana-pyroscope-datasource"} {
		if ds[uid].Type != typ {
			t.Errorf("datasource %s: type %q, want %q", uid, ds[uid].Type, typ)
		}
	}
	links := map[string]bool{}
	for _, d := range ds {
		collectUIDs(d.JSONData, links)
	}
	for uid := range links {
		if _, ok := ds[uid]; !ok {
			t.Errorf("a datasource link names uid %q, which is not provisioned", uid)
		}
	}
	for _, key := range []string{"tracesToLogsV2", "tracesToMetrics", "tracesToProfiles", "serviceMap"} {
		if _, ok := ds["tempo"].JSONData[key]; !ok {
			t.Errorf("tempo has no %s link", key)
		}
	}
	if _, ok := ds["prometheus"].JSONData["exemplarTraceIdDestinations"]; !ok {
		t.Error("prometheus has no exemplarTraceIdDestinations: exemplars would not open traces")
	}
	if _, ok := ds["loki"].JSONData["derivedFields"]; !ok {
		t.Error("loki has no derivedFields: log lines would not open traces")
	}
	p := loadCompose(t)
	for uid, d := range ds {
		host := strings.TrimPrefix(d.URL, "http://")
		name, port, _ := strings.Cut(host, ":")
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("datasource %s points at %s, not a compose service", uid, d.URL)
			continue
		}
		if hc := strings.Join(s.HealthCheck.Test, " "); !strings.Contains(hc, ":"+port+"/") {
			t.Errorf("datasource %s uses port %s; %s's healthcheck checks %q", uid, port, name, hc)
		}
	}
}

// Every dashboard Grafana is given names only provisioned datasources
// (or a variable), and the provider reads the folder compose mounts the
// repository's dashboards into.
func TestDashboardsUseProvisionedDatasources(t *testing.T) {
	ds := provisionedDatasources(t)
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		uids := map[string]bool{}
		collectUIDs(doc, uids)
		for uid := range uids {
			if strings.HasPrefix(uid, "$") || uid == "-- Grafana --" || uid == "grafana" {
				continue
			}
			if _, ok := ds[uid]; !ok {
				t.Errorf("%s names datasource uid %q, which is not provisioned", filepath.Base(f), uid)
			}
		}
	}

	raw, err := os.ReadFile("compose/grafana/provisioning/dashboards/dashboards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Type    string `json:"type"`
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	grafana := loadCompose(t).Services["grafana"]
	dashboards, _ := filepath.Abs(filepath.Join(root, "dashboards"))
	provisioning, _ := filepath.Abs("compose/grafana/provisioning")
	var mounted, provisioned []string
	for _, v := range grafana.Volumes {
		switch v.Source {
		case dashboards:
			mounted = append(mounted, v.Target)
		case provisioning:
			provisioned = append(provisioned, v.Target)
		}
	}
	if !slices.Contains(provisioned, "/etc/grafana/provisioning") {
		t.Errorf("grafana does not mount deploy/compose/grafana/provisioning at /etc/grafana/provisioning (mounts %v)", grafana.Volumes)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || !slices.Contains(mounted, prov.Providers[0].Options.Path) {
		t.Errorf("the dashboards provider reads %+v; compose mounts dashboards/ at %v", prov.Providers, mounted)
		return
	}
	if home := grafana.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != nil {
		rel, ok := strings.CutPrefix(*home, prov.Providers[0].Options.Path+"/")
		if _, err := os.Stat(filepath.Join(root, "dashboards", rel)); !ok || err != nil {
			t.Errorf("the home dashboard %s is not one of dashboards/", *home)
		}
	}
}
