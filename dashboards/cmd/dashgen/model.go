package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Markers in a panel description for series that only exist in some
// setups; the e2e data check skips such panels.
const (
	K6Only      = "Data: k6 only (docker compose --profile load)."
	ComposeOnly = "Data: compose stack only."
)

// The provisioned datasources (deploy/compose/grafana/provisioning): each
// has a fixed uid that panels, targets and data links name.
const (
	Prometheus = "prometheus"
	Tempo      = "tempo"
	Loki       = "loki"
	Pyroscope  = "pyroscope"
)

var dsTypes = map[string]string{Prometheus: "prometheus", Tempo: "tempo", Loki: "loki", Pyroscope: "grafana-pyroscope-datasource"}

type target struct{ expr, legend string }

// Kinds of panel that show no query's data.
var noQuery = map[string]bool{"text": true, "alertlist": true, "dashlist": true}

type panel struct {
	title, desc string
	kind        string // timeseries (default), stat, state-timeline, table, logs, text, alertlist, dashlist
	ds          string // the targets' datasource: Prometheus (default, through $datasource), Tempo or Loki
	unit        string
	exemplars   bool
	targets     []target
	mappings    []any
	// thresholds colour a value past each step (the alert rules' limits,
	// the objective); a timeseries draws them as lines.
	thresholds []step
	base       string // the colour below the first threshold; green when empty
	// links open what lies behind a series: its traces, logs, profile.
	links   []link
	text    string         // a text panel's markdown
	options map[string]any // a kind's own options (alertlist, dashlist, table)
	w, h    int            // size on the 24-column grid; 0 means 12 × 8
}

// step is a threshold: from value on, color.
type step struct {
	value float64
	color string
}

// link is a data link: title and URL (Grafana interpolates ${…} in it).
type link struct{ title, url string }

type dashboard struct {
	UID, Title, Desc string
	Service          bool // has a $service variable filtering by job
	// Vars are more variables, after datasource and service.
	Vars   []map[string]any
	Panels []panel
}

func q(expr, legend string) target { return target{expr, legend} }

const ri = "$__rate_interval"

// states maps breaker_state values to words and colours.
var states = []any{map[string]any{"type": "value", "options": map[string]any{
	"0": map[string]any{"text": "closed", "color": "green"},
	"1": map[string]any{"text": "half-open", "color": "yellow"},
	"2": map[string]any{"text": "open", "color": "red"},
}}}

var onOff = []any{map[string]any{"type": "value", "options": map[string]any{
	"0": map[string]any{"text": "off", "color": "transparent"},
	"1": map[string]any{"text": "on", "color": "red"},
}}}

var leads = []any{map[string]any{"type": "value", "options": map[string]any{
	"0": map[string]any{"text": "follower", "color": "transparent"},
	"1": map[string]any{"text": "leader", "color": "green"},
}}}

// Render builds a dashboard's Grafana JSON model.
func Render(d dashboard) ([]byte, error) {
	prom := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	vars := []any{map[string]any{
		"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
		"current": map[string]any{"text": "Prometheus", "value": "prometheus"}, "hide": 0,
	}}
	if d.Service {
		vars = append(vars, map[string]any{
			"name": "service", "label": "Service", "type": "query", "datasource": prom,
			"query":      map[string]any{"query": "label_values(up, job)", "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"definition": "label_values(up, job)", "includeAll": true, "multi": true, "allValue": ".*", "refresh": 2,
			"current": map[string]any{"text": []string{"All"}, "value": []string{"$__all"}}, "sort": 1,
		})
	}
	for _, v := range d.Vars {
		vars = append(vars, v)
	}
	panels := make([]any, 0, len(d.Panels))
	x, y, rowH := 0, 0, 0
	for i, p := range d.Panels {
		w, h := p.w, p.h
		if w == 0 {
			w, h = 12, 8
		}
		if x+w > 24 { // the next row
			x, y, rowH = 0, y+rowH, 0
		}
		panels = append(panels, renderPanel(p, i+1, map[string]any{"h": h, "w": w, "x": x, "y": y}, prom))
		x, rowH = x+w, max(rowH, h)
	}
	model := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Desc, "tags": []string{"sagasuite"},
		"editable": true, "schemaVersion": 39, "version": 1, "refresh": "10s", "timezone": "browser",
		"time": map[string]any{"from": "now-15m", "to": "now"}, "graphTooltip": 1,
		"templating": map[string]any{"list": vars}, "annotations": map[string]any{"list": []any{}},
		"links":  []any{map[string]any{"title": "Sagasuite", "type": "dashboards", "tags": []string{"sagasuite"}, "asDropdown": true}},
		"panels": panels,
	}
	b, err := json.MarshalIndent(model, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
	}
	return append(b, '\n'), nil
}

func renderPanel(p panel, id int, grid map[string]any, prom map[string]any) map[string]any {
	kind := p.kind
	if kind == "" {
		kind = "timeseries"
	}
	out := map[string]any{"id": id, "type": kind, "title": p.title, "description": p.desc, "gridPos": grid}
	if noQuery[kind] {
		out["options"] = p.options
		if kind == "text" {
			out["options"] = map[string]any{"mode": "markdown", "content": p.text}
		}
		return out
	}
	ds := prom
	if p.ds != "" {
		ds = map[string]any{"type": dsTypes[p.ds], "uid": p.ds}
	}
	targets := make([]any, len(p.targets))
	for j, t := range p.targets {
		tg := map[string]any{"refId": string(rune('A' + j)), "datasource": ds}
		switch p.ds {
		case Tempo:
			tg["queryType"], tg["query"], tg["tableType"], tg["limit"] = "traceql", t.expr, "traces", 20
		case Loki:
			tg["expr"], tg["queryType"] = t.expr, "range"
		default:
			tg["expr"], tg["legendFormat"], tg["exemplar"], tg["range"] = t.expr, t.legend, p.exemplars, true
		}
		targets[j] = tg
	}
	defaults := map[string]any{"unit": p.unit}
	if p.mappings != nil {
		defaults["mappings"] = p.mappings
		defaults["color"] = map[string]any{"mode": "thresholds"}
	}
	if len(p.thresholds) > 0 {
		base := p.base
		if base == "" {
			base = "green"
		}
		steps := []any{map[string]any{"color": base, "value": nil}}
		for _, s := range p.thresholds {
			steps = append(steps, map[string]any{"color": s.color, "value": s.value})
		}
		defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": steps}
		if kind == "timeseries" {
			defaults["custom"] = map[string]any{"thresholdsStyle": map[string]any{"mode": "line+area"}}
		}
		if kind == "stat" && p.mappings == nil {
			defaults["color"] = map[string]any{"mode": "thresholds"}
		}
	}
	if len(p.links) > 0 {
		links := make([]any, len(p.links))
		for j, l := range p.links {
			links[j] = map[string]any{"title": l.title, "url": l.url, "targetBlank": false}
		}
		defaults["links"] = links
	}
	options := map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi"}}
	for k, v := range p.options {
		options[k] = v
	}
	out["datasource"], out["targets"], out["options"] = ds, targets, options
	out["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": []any{}}
	return out
}

// explore is a link to Grafana's Explore with one query on datasource uid,
// over the panel's time range. ${…} in query stays for Grafana to fill in
// (a series' labels: ${__field.labels.job}).
func explore(uid string, query map[string]any) string {
	query["refId"] = "A"
	query["datasource"] = map[string]any{"type": dsTypes[uid], "uid": uid}
	pane := map[string]any{"sagasuite": map[string]any{"datasource": uid, "queries": []any{query},
		"range": map[string]any{"from": "${__from}", "to": "${__to}"}}}
	b, err := json.Marshal(pane)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return "/explore?schemaVersion=1&orgId=1&panes=" + strings.ReplaceAll(string(b), "#", "%23")
}

// tracesOf, logsOf and profileOf open the traces, logs and CPU flame graph
// of a service: service is a name, or a series label such as
// ${__field.labels.job}.
func tracesOf(service, extra string) link {
	return link{title: "Traces of " + service, url: explore(Tempo, map[string]any{"queryType": "traceql", "tableType": "traces",
		"query": `{ resource.service.name = "` + service + `"` + extra + ` }`})}
}

func logsOf(service string) link {
	return link{title: "Logs of " + service, url: explore(Loki, map[string]any{"expr": `{service_name="` + service + `"}`})}
}

func profileOf(service string) link {
	return link{title: "CPU flame graph of " + service, url: explore(Pyroscope, map[string]any{"queryType": "profile",
		"profileTypeId": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": `{service_name="` + service + `"}`})}
}

// behind is the three links of a series' service, by its job label.
func behind(extra string) []link {
	const job = "${__field.labels.job}"
	return []link{tracesOf(job, extra), logsOf(job), profileOf(job)}
}
