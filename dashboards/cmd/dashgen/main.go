// Command dashgen writes the suite's Grafana dashboards as JSON. Each
// panel is one row of the tables below: its query, unit and a description
// that says which pattern it shows and what good looks like. Edit here,
// then regenerate (a test fails while the committed JSON differs):
//
//	go run ./dashboards/cmd/dashgen -out dashboards
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboards to")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	for _, d := range All() {
		b, err := Render(d)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.UID+".json"), b, 0o644); err != nil { // #nosec G306 -- dashboards are committed files, readable by all
			return err
		}
	}
	return nil
}

// Markers in a panel description for series that only exist in some
// setups; the e2e data check skips such panels.
const (
	K6Only      = "Data: k6 only (docker compose --profile load)."
	ComposeOnly = "Data: compose stack only."
)

type target struct{ expr, legend string }

type panel struct {
	title, desc string
	kind        string // timeseries (default), stat, state-timeline
	unit        string
	exemplars   bool
	targets     []target
	mappings    []any
}

type dashboard struct {
	UID, Title, Desc string
	Service          bool // has a $service variable filtering by job
	Panels           []panel
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

// All is every dashboard of the suite.
func All() []dashboard {
	return []dashboard{
		{UID: "sagasuite-overview", Title: "Sagasuite / Overview", Desc: "The order saga end to end: outcomes, latency against its objective, errors and load shedding.", Service: true, Panels: []panel{
			{title: "Orders by outcome", unit: "reqps", desc: "Saga (choreography): each order's terminal status per second. Good: CONFIRMED dominates; card_declined and insufficient_funds follow the card mix; payment_unavailable or saga_timeout mean a dependency is failing.",
				targets: []target{q(`sum by (outcome, reason) (rate(saga_duration_seconds_count{job=~"$service"}[`+ri+`]))`, "{{outcome}} {{reason}}")}},
			{title: "Saga latency p50 / p99", unit: "s", exemplars: true, desc: "Saga: time from POST /orders to the terminal status. Objective: p99 at most 5 s. Good: p99 well under 1 s at steady load. The dots are exemplars: click one to open that saga's trace.",
				targets: []target{q(`histogram_quantile(0.5, sum by (le) (rate(saga_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "p50"), q(`histogram_quantile(0.99, sum by (le) (rate(saga_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "p99")}},
			{title: "POST /orders answers", unit: "reqps", desc: "The door: 202 accepted, 4xx bad input, 503 overloaded (load shedding) or inventory_unavailable (breaker). Good: almost all 202.",
				targets: []target{q(`sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{job="orders", http_route="/orders", http_request_method="POST"}[`+ri+`]))`, "{{http_response_status_code}}")}},
			{title: "Server error ratio", kind: "stat", unit: "percentunit", desc: "Share of HTTP answers that are 5xx, all services. Good: 0 % (503s while shedding or with a breaker open are expected answers, and show here).",
				targets: []target{q(`(sum(rate(http_server_request_duration_seconds_count{job=~"$service", http_response_status_code=~"5.."}[`+ri+`])) or vector(0)) / sum(rate(http_server_request_duration_seconds_count{job=~"$service"}[`+ri+`]))`, "5xx share")}},
			{title: "Saga SLO burn rate", unit: "none", desc: "The saga objective (99 % of sagas within 5 s) as burn rate: 1 spends the error budget exactly over the SLO period. SagaSLOFastBurn pages when both lines pass 14.4. Good: near 0.",
				targets: []target{q(`saga:slo_errors:ratio_rate5m / 0.01`, "5m"), q(`saga:slo_errors:ratio_rate1h / 0.01`, "1h")}},
			{title: "Sagas in flight, limit and shedding", unit: "short", desc: "Load shedding (a bulkhead for the whole saga): orders accepted and not finished, the adaptive (AIMD) limit on them, and orders refused per second. Good: in flight well under the limit and nothing shed; at overload the limit settles and the surplus is shed instead of queued.",
				targets: []target{q(`sum(saga_in_flight{job=~"$service"})`, "in flight"), q(`sum(admission_limit{job=~"$service"})`, "limit"), q(`sum(rate(orders_shed_total{job=~"$service"}[`+ri+`]))`, "shed/s")}},
		}},
		{UID: "sagasuite-red", Title: "Sagasuite / Service RED", Desc: "Rate, errors and duration of every service's HTTP endpoints and outgoing calls.", Service: true, Panels: []panel{
			{title: "Requests by route", unit: "reqps", desc: "Rate of each service's HTTP routes. Good: steady and matching the offered load.",
				targets: []target{q(`sum by (job, http_request_method, http_route) (rate(http_server_request_duration_seconds_count{job=~"$service"}[`+ri+`]))`, "{{job}} {{http_request_method}} {{http_route}}")}},
			{title: "Errors by route", unit: "reqps", desc: "5xx answers by route. Good: none. 503 from orders are load shedding or an open breaker; 500 from psp are injected faults or the processing-error test card.",
				targets: []target{q(`sum by (job, http_route, http_response_status_code) (rate(http_server_request_duration_seconds_count{job=~"$service", http_response_status_code=~"5.."}[`+ri+`])) or vector(0)`, "{{job}} {{http_route}} {{http_response_status_code}}")}},
			{title: "Latency p99 by route", unit: "s", exemplars: true, desc: "Server time per route. Good: POST /orders p99 under 100 ms (its budget is 1 s whatever the dependencies do); GET with ?wait= is long on purpose. Exemplars open the trace.",
				targets: []target{q(`histogram_quantile(0.99, sum by (job, http_route, le) (rate(http_server_request_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "{{job}} {{http_route}}")}},
			{title: "Outgoing calls p99", unit: "s", exemplars: true, desc: "Circuit breaker and timeouts: client time of calls to other services (orders → inventory quotes, payments → psp). Good: a few ms; a slow dependency shows here first, then in the breaker panels.",
				targets: []target{q(`histogram_quantile(0.99, sum by (job, le) (rate(http_client_request_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "{{job}}")}},
		}},
		{UID: "sagasuite-kafka", Title: "Sagasuite / Kafka & outbox", Desc: "Messages through Kafka: the transactional outbox, consumers, lag, dead letters and the idempotent inbox.", Service: true, Panels: []panel{
			{title: "Messages sent by topic", unit: "short", desc: "Transactional outbox → Kafka: messages published per second by topic. Good: follows the order rate (about one per saga step).",
				targets: []target{q(`sum by (messaging_destination_name) (rate(messaging_client_sent_messages_total{job=~"$service"}[`+ri+`]))`, "{{messaging_destination_name}}")}},
			{title: "Messages consumed by outcome", unit: "short", desc: "Consumers: messages handled per second by topic and outcome (ok, retry, dead_letter). Good: all ok.",
				targets: []target{q(`sum by (job, messaging_destination_name, outcome) (rate(messaging_client_consumed_messages_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{messaging_destination_name}} {{outcome}}")}},
			{title: "Consumer lag by group and partition", unit: "short", desc: "Messages each consumer group is behind the end of each partition (the group's replicas report the same partitions: max). Good: near 0; a rising line is a stuck or slow consumer (ConsumerLagGrowing).",
				targets: []target{q(`max by (group, topic, partition) (kafka_consumer_group_lag{job=~"$service"})`, "{{group}} {{topic}}/{{partition}}")}},
			{title: "Handler time p99", unit: "s", exemplars: true, desc: "Time a consumer's handler takes per message (inbox check, effect, outbox write in one transaction; provider calls after it). Good: a few ms.",
				targets: []target{q(`histogram_quantile(0.99, sum by (job, messaging_destination_name, le) (rate(messaging_process_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "{{job}} {{messaging_destination_name}}")}},
			{title: "Dead letters", unit: "short", desc: "Dead-letter queue: messages no consumer can ever process, per second, by DLQ. Good: none (MessagesDeadLettered fires on any). Send them back after the fix with platform/cmd/redrive.",
				targets: []target{q(`sum by (messaging_destination_name) (rate(messaging_client_sent_messages_total{job=~"$service", messaging_destination_name=~".+\\.dlq"}[`+ri+`])) or vector(0)`, "{{messaging_destination_name}}")}},
			{title: "Outbox backlog", unit: "short", desc: "Transactional outbox: rows committed and not yet published. Good: near 0; growth means Kafka is down or the relay is stuck.",
				targets: []target{q(`max by (job) (outbox_pending_messages{job=~"$service"})`, "{{job}}")}},
			{title: "Oldest unpublished outbox row", unit: "s", desc: "Transactional outbox: age of the oldest row waiting. Good: milliseconds; OutboxStuck fires over 10 s.",
				targets: []target{q(`max by (job) (outbox_oldest_pending_age_seconds{job=~"$service"})`, "{{job}}")}},
			{title: "Outbox commit → Kafka ack p99", unit: "s", exemplars: true, desc: "Transactional outbox: time from a row's commit to Kafka's acknowledgement. Good: a few ms.",
				targets: []target{q(`histogram_quantile(0.99, sum by (job, le) (rate(outbox_lag_seconds_bucket{job=~"$service"}[`+ri+`])))`, "{{job}}")}},
			{title: "Duplicates skipped by the inbox", unit: "short", desc: "Idempotent consumer (inbox): redelivered messages skipped because they were applied before. Good: 0 normally; non-zero after a consumer crash or a rebalance, with no change of state.",
				targets: []target{q(`sum by (job, consumer) (rate(inbox_duplicates_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{consumer}}")}},
		}},
		{UID: "sagasuite-resilience", Title: "Sagasuite / Resilience", Desc: "Circuit breakers, bulkheads, retry budgets and the faults switched on to exercise them.", Service: true, Panels: []panel{
			{title: "Breaker state", kind: "state-timeline", mappings: states, desc: "Circuit breaker: orders → inventory and payments → psp. Good: closed. Open means calls fail fast without reaching the dependency; half-open is one probe call; CircuitBreakerOpen fires after a minute open.",
				targets: []target{q(`max by (job, breaker) (breaker_state{job=~"$service"})`, "{{job}} {{breaker}}")}},
			{title: "Breaker calls by outcome", unit: "short", desc: "Circuit breaker: calls per second by outcome: success, failure (counted towards opening), rejected (while open), ignored (the caller gave up). Good: success only.",
				targets: []target{q(`sum by (job, breaker, outcome) (rate(breaker_calls_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{breaker}} {{outcome}}")}},
			{title: "Breaker transitions", unit: "short", desc: "Circuit breaker: state changes. Good: none; a closed → open → half-open → closed cycle is a dependency failing and recovering.",
				targets: []target{q(`sum by (job, breaker, from, to) (increase(breaker_transitions_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{breaker}} {{from}} → {{to}}")}},
			{title: "Bulkhead in flight and queued", unit: "short", desc: "Bulkhead: calls running and waiting per pool (payments keeps charges and refunds apart, so compensations get through when charges saturate). Good: in flight under the pool's size, nothing queued.",
				targets: []target{q(`sum by (job, bulkhead) (bulkhead_inflight{job=~"$service"})`, "{{job}} {{bulkhead}} in flight"), q(`sum by (job, bulkhead) (bulkhead_queued{job=~"$service"})`, "{{job}} {{bulkhead}} queued")}},
			{title: "Bulkhead rejections", unit: "short", desc: "Bulkhead: calls refused because the pool and its queue were full. Good: none; charges refused here are compensated (payment_unavailable).",
				targets: []target{q(`sum by (job, bulkhead) (rate(bulkhead_rejected_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{bulkhead}}")}},
			{title: "Retries denied by the budget", unit: "short", desc: "Retry budget: retries not made because retries would exceed 10 % of calls. Good: none; non-zero during an outage is the budget keeping a retry storm off the failing dependency.",
				targets: []target{q(`sum by (job, budget) (rate(retry_budget_denied_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{budget}}")}},
			{title: "Provider calls not settled", unit: "short", desc: "Money whose fate is unknown: charges and refunds payments decided and psp has not confirmed (a timeout, a reset, a 5xx: psp may have done it). Payments makes each again with its idempotency key until psp says what it did. Good: 0 but for a moment during a psp fault; ProviderCallsUnsettled fires when one waits 5 minutes.",
				targets: []target{q(`max by (kind) (payments_provider_calls_outstanding{job=~"$service"})`, "{{kind}} outstanding"), q(`max by (kind) (payments_provider_calls_oldest_seconds{job=~"$service"})`, "{{kind}} oldest (s)")}},
			{title: "Faults switched on", kind: "state-timeline", mappings: onOff, desc: "Fault injection (PUT /admin/faults, /admin/consumption): which faults are on, per process. Use it to line the other panels up with what was injected.",
				targets: []target{q(`max by (job, instance, kind) (faults_active{job=~"$service"})`, "{{job}} {{instance}} {{kind}}")}},
		}},
		{UID: "sagasuite-coordination", Title: "Sagasuite / Coordination", Desc: "Leader election, service discovery and the registration sidecars (etcd).", Service: true, Panels: []panel{
			{title: "Leader per election", kind: "state-timeline", mappings: leads, desc: "Leader election: who runs each singleton job (orders' saga watchdog, inventory's reservation expiry). Good: exactly one leader per election; after a leader dies another takes over within the lease TTL (ElectionWithoutLeader fires otherwise).",
				targets: []target{q(`max by (election, instance_id) (election_leader{job=~"$service"})`, "{{election}} {{instance_id}}")}},
			{title: "Leadership changes", unit: "short", desc: "Leader election: times an instance became or stopped being leader. Good: only at starts, stops and failovers.",
				targets: []target{q(`sum by (election, instance_id) (increase(election_leadership_changes_total{job=~"$service"}[`+ri+`]))`, "{{election}} {{instance_id}}")}},
			{title: "Singleton runs by outcome", unit: "short", desc: "Leader election with fencing: runs of each singleton job on its leader by outcome: ok, error, fenced (a newer leader's token was seen: this one was deposed). Good: ok only.",
				targets: []target{q(`sum by (election, outcome) (rate(singleton_runs_total{job=~"$service"}[`+ri+`]))`, "{{election}} {{outcome}}")}},
			{title: "Since the last successful singleton run", unit: "s", desc: "Leader election: how long ago each singleton's leader last finished a run. Good: a few seconds (a run is due every few); SingletonNotRunning fires past a minute (fenced off, or failing).",
				targets: []target{q(`time() - max by (election) (singleton_last_success_seconds{job=~"$service"})`, "{{election}}")}},
			{title: "Inventory instances orders can see", unit: "short", desc: "Service discovery: instances of each service registered in etcd as the resolver sees them. Good: 2 inventory replicas; a killed replica drops out within its lease TTL.",
				targets: []target{q(`max by (job, service) (discovery_instances{job=~"$service"})`, "{{job}} sees {{service}}")}},
			{title: "Sidecar registrations", unit: "short", desc: "Sidecar: registrations and deregistrations made by each sidecar, which registers its service only while the service's /readyz is 200. Good: one registration per start, one deregistration per stop.",
				targets: []target{q(`sum by (service, action) (increase(sidecar_registrations_total{job=~"$service"}[`+ri+`]))`, "{{service}} {{action}}")}},
		}},
		{UID: "sagasuite-cqrs", Title: "Sagasuite / Event sourcing & CQRS", Desc: "Orders' event store and the read model the projector keeps.", Service: true, Panels: []panel{
			{title: "Event append p99", unit: "s", exemplars: true, desc: "Event sourcing: time to append a command's events (with expected version), inside its transaction. Good: about a millisecond.",
				targets: []target{q(`histogram_quantile(0.99, sum by (le) (rate(eventstore_append_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "p99")}},
			{title: "Appends and version conflicts", unit: "short", desc: "Event sourcing: appends per second, split by optimistic-concurrency conflict (another command changed the order first). Good: conflicts rare; each is retried or answered 409.",
				targets: []target{q(`sum by (conflict) (rate(eventstore_append_duration_seconds_count{job=~"$service"}[`+ri+`]))`, "conflict={{conflict}}")}},
			{title: "Projection lag (events)", unit: "short", desc: "CQRS: events in the store not yet in the read model. Good: near 0; reads with min_position wait for it, GET /orders/{id} falls back to the event stream.",
				targets: []target{q(`max by (projection) (projection_lag_events{job=~"$service"})`, "{{projection}}")}},
			{title: "Projection lag (seconds)", unit: "s", desc: "CQRS: age of the newest applied event while events are pending. Good: milliseconds; ProjectionLagHigh fires over 5 s.",
				targets: []target{q(`max by (projection) (projection_lag_seconds{job=~"$service"})`, "{{projection}}")}},
			{title: "Events applied", unit: "short", desc: "CQRS: events the projector applied per second. Good: follows the append rate; a rebuild shows as a burst.",
				targets: []target{q(`sum by (projection) (rate(projection_events_applied_total{job=~"$service"}[`+ri+`]))`, "{{projection}}")}},
			{title: "Events parked", unit: "short", desc: "CQRS: events the projector could not apply (they do not decode, or the read model refused their data), kept in projection_parked and skipped so the read model goes on. Good: none; ProjectionEventsParked fires on any.",
				targets: []target{q(`sum by (projection) (increase(projection_events_parked_total{job=~"$service"}[`+ri+`]))`, "{{projection}}")}},
			{title: "Rebuild progress", unit: "percentunit", desc: "CQRS: share of events the running (or last) rebuild applied (POST /admin/projections/{name}/rebuild). Good: reaches 100 % and the new table is swapped in.",
				targets: []target{q(`max by (projection) (projection_rebuild_progress_ratio{job=~"$service"})`, "{{projection}}")}},
		}},
		{UID: "sagasuite-runtime", Title: "Sagasuite / Go runtime & PostgreSQL", Desc: "Each process's CPU, memory and goroutines, and its database pool and query times.", Service: true, Panels: []panel{
			{title: "CPU", unit: "percentunit", desc: "CPU per process (1 = one core). Good: headroom on a 2-core machine; profiles (Pyroscope) say where it goes.",
				targets: []target{q(`sum by (job, instance) (rate(process_cpu_seconds_total{job=~"$service"}[`+ri+`]))`, "{{job}} {{instance}}")}},
			{title: "Resident memory", unit: "bytes", desc: "Memory per process. Good: flat under steady load.",
				targets: []target{q(`max by (job, instance) (process_resident_memory_bytes{job=~"$service"})`, "{{job}} {{instance}}")}},
			{title: "Goroutines", unit: "short", desc: "Goroutines per process. Good: flat; a steady climb is a leak (a goroutine per request never ending).",
				targets: []target{q(`max by (job, instance) (go_goroutines{job=~"$service"})`, "{{job}} {{instance}}")}},
			{title: "Query time p99", unit: "s", exemplars: true, desc: "PostgreSQL (otelpgx): client time of queries and batches per service. Good: a few ms.",
				targets: []target{q(`histogram_quantile(0.99, sum by (job, le) (rate(db_client_operation_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "{{job}}")}},
			{title: "Pool connections", unit: "short", desc: "PostgreSQL pool: connections idle and used per service. Good: used below the pool size (DB_MAX_CONNS); no connection is held across a remote call.",
				targets: []target{q(`sum by (job, db_client_connection_state) (db_client_connection_count{job=~"$service"})`, "{{job}} {{db_client_connection_state}}")}},
			{title: "Waiting for a connection", unit: "short", desc: "PostgreSQL pool: requests waiting for a free connection. Good: 0; a queue here means the pool is too small or something holds connections.",
				targets: []target{q(`sum by (job) (db_client_connection_pending_requests{job=~"$service"})`, "{{job}}")}},
		}},
		{UID: "sagasuite-loadtest", Title: "Sagasuite / Load test (k6)", Desc: "The k6 scenarios' own view, from k6's Prometheus remote-write output.", Service: true, Panels: []panel{
			{title: "Requests per second", unit: "reqps", desc: "k6: HTTP requests sent, by scenario. " + K6Only,
				targets: []target{q(`sum by (scenario) (rate(k6_http_reqs_total[`+ri+`]))`, "{{scenario}}")}},
			{title: "Request duration p99", unit: "s", desc: "k6: client-side request duration p99, by scenario. Good: within the scenario's threshold. " + K6Only,
				targets: []target{q(`max by (scenario) (k6_http_req_duration_p99)`, "{{scenario}}")}},
			{title: "Saga completion p99", unit: "s", desc: "k6: time from POST to the order's outcome (one ?wait= request), the scenario's custom Trend. Good: under 5 s. " + K6Only,
				targets: []target{q(`max by (scenario) (k6_saga_completion_p99)`, "{{scenario}}")}},
			{title: "Failed checks", unit: "percentunit", desc: "k6: share of checks that failed. Good: 0. " + K6Only,
				targets: []target{q(`1 - avg by (scenario) (k6_checks_rate)`, "{{scenario}}")}},
			{title: "Virtual users", unit: "short", desc: "k6: virtual users running. " + K6Only,
				targets: []target{q(`sum(k6_vus)`, "VUs")}},
		}},
	}
}

// Render builds a dashboard's Grafana JSON model.
func Render(d dashboard) ([]byte, error) {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	vars := []any{map[string]any{
		"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
		"current": map[string]any{"text": "Prometheus", "value": "prometheus"}, "hide": 0,
	}}
	if d.Service {
		vars = append(vars, map[string]any{
			"name": "service", "label": "Service", "type": "query", "datasource": ds,
			"query":      map[string]any{"query": "label_values(up, job)", "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"definition": "label_values(up, job)", "includeAll": true, "multi": true, "allValue": ".*", "refresh": 2,
			"current": map[string]any{"text": []string{"All"}, "value": []string{"$__all"}}, "sort": 1,
		})
	}
	panels := make([]any, 0, len(d.Panels))
	for i, p := range d.Panels {
		kind := p.kind
		if kind == "" {
			kind = "timeseries"
		}
		targets := make([]any, len(p.targets))
		for j, t := range p.targets {
			targets[j] = map[string]any{"refId": string(rune('A' + j)), "datasource": ds, "expr": t.expr,
				"legendFormat": t.legend, "exemplar": p.exemplars, "range": true}
		}
		defaults := map[string]any{"unit": p.unit}
		if p.mappings != nil {
			defaults["mappings"] = p.mappings
			defaults["color"] = map[string]any{"mode": "thresholds"}
		}
		panels = append(panels, map[string]any{
			"id": i + 1, "type": kind, "title": p.title, "description": p.desc, "datasource": ds,
			"gridPos":     map[string]any{"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
			"targets":     targets,
			"fieldConfig": map[string]any{"defaults": defaults, "overrides": []any{}},
			"options":     map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": map[string]any{"mode": "multi"}},
		})
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
