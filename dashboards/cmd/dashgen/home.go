package main

import "strings"

// home is Grafana's home page in the compose stack: what the suite is, a
// tour, one stat per pattern (each opening the dashboard that shows it),
// the alerts firing and every dashboard.
func home() dashboard {
	to := func(uid string) []link {
		return []link{{title: "Open its dashboard", url: "/d/" + uid + "?${__url_time_range}&${service:queryparam}"}}
	}
	stat := func(p panel) panel {
		p.kind, p.w, p.h = "stat", 6, 5
		p.options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}}, "colorMode": "background", "graphMode": "area"}
		return p
	}
	return dashboard{UID: "sagasuite-home", Title: "Sagasuite / Start here", Desc: "What the suite is, a tour, the state of each pattern at a glance, the alerts firing and every dashboard.", Service: true, Panels: []panel{
		{title: "Sagasuite", kind: "text", w: 24, h: 11, desc: "What the suite is and a tour of it: place an order, follow it, break something, watch the patterns react.", text: tour},
		stat(panel{title: "Saga: p99 to the outcome", unit: "s", thresholds: []step{{1, "yellow"}, {5, "red"}}, links: to("sagasuite-overview"),
			desc:    "Saga (choreography with compensations): time from POST /orders to the order's terminal status, 99th percentile. Objective: 5 s. Good: green, well under 1 s.",
			targets: []target{q(`histogram_quantile(0.99, sum by (le) (rate(saga_duration_seconds_bucket{job=~"$service"}[`+ri+`])))`, "p99")}}),
		stat(panel{title: "Event sourcing: appends", unit: "ops", links: to("sagasuite-cqrs"),
			desc:    "Event sourcing: commands appending events to orders' event store per second (each with its expected version). Good: follows the order rate.",
			targets: []target{q(`sum(rate(eventstore_append_duration_seconds_count{job=~"$service"}[`+ri+`]))`, "appends/s")}}),
		stat(panel{title: "CQRS: read model behind", unit: "s", thresholds: []step{{1, "yellow"}, {5, "red"}}, links: to("sagasuite-cqrs"),
			desc:    "CQRS: how far the projector's read model is behind the event store, in seconds. Good: green, milliseconds; ProjectionLagHigh fires past 5 s.",
			targets: []target{q(`max(projection_lag_seconds{job=~"$service"})`, "behind")}}),
		stat(panel{title: "Circuit breakers", mappings: states, links: to("sagasuite-resilience"),
			desc:    "Circuit breaker: the worst state of orders → inventory and payments → psp. Good: closed; open means calls fail fast while the dependency recovers.",
			targets: []target{q(`max(breaker_state{job=~"$service"})`, "worst")}}),
		stat(panel{title: "Bulkhead: calls refused", unit: "reqps", thresholds: []step{{0.0001, "red"}}, links: to("sagasuite-resilience"),
			desc:    "Bulkhead: calls refused per second because their pool and queue were full (payments keeps charges and refunds apart). Good: 0.",
			targets: []target{q(`sum(rate(bulkhead_rejected_total{job=~"$service"}[`+ri+`])) or vector(0)`, "refused/s")}}),
		stat(panel{title: "Leader election: one leader each", unit: "percentunit", base: "red", thresholds: []step{{1, "green"}}, links: to("sagasuite-coordination"),
			desc:    "Leader election: share of elections (saga watchdog, reservation expiry) with exactly one leader. Good: 100 %; less is an election without a leader, or two.",
			targets: []target{q(`(count(sum by (election) (max by (election, instance_id) (election_leader{job=~"$service"})) == 1) or vector(0)) / count(count by (election) (election_leader{job=~"$service"}))`, "elections")}}),
		stat(panel{title: "Service discovery: inventory", unit: "short", base: "red", thresholds: []step{{1, "yellow"}, {2, "green"}}, links: to("sagasuite-coordination"),
			desc:    "Service discovery: inventory instances orders finds in etcd. Good: 2 (both replicas); 1 while one is down, 0 and orders answers 503 inventory_unavailable.",
			targets: []target{q(`min(discovery_instances{job=~"$service", service="inventory"})`, "instances")}}),
		stat(panel{title: "Sidecars: readiness passing", unit: "percentunit", base: "red", thresholds: []step{{0.9, "yellow"}, {0.999, "green"}}, links: to("sagasuite-coordination"),
			desc:    "Sidecar: share of the sidecars' readiness checks of their service that passed; a sidecar keeps its service in etcd only while they do. Good: 100 %.",
			targets: []target{q(`sum(rate(sidecar_health_checks_total{job=~"$service", result="ready"}[`+ri+`])) / sum(rate(sidecar_health_checks_total{job=~"$service"}[`+ri+`]))`, "ready")}}),
		{title: "Alerts firing and pending", kind: "alertlist", w: 12, h: 10, desc: "The Prometheus alert rules (prometheus/rules/) firing or pending now, most severe first. Each rule's annotation says what it means and what to do. Good: empty.",
			options: map[string]any{"viewMode": "list", "groupMode": "default", "maxItems": 20, "sortOrder": 1, "dashboardAlerts": false, "alertName": "", "alertInstanceLabelFilter": "", "showInstances": true,
				"stateFilter": map[string]any{"firing": true, "pending": true, "noData": false, "normal": false, "error": true}}},
		{title: "Dashboards", kind: "dashlist", w: 12, h: 10, desc: "Every Sagasuite dashboard; each keeps this time range and service selection.",
			options: map[string]any{"showStarred": false, "showRecentlyViewed": false, "showSearch": true, "showHeadings": false, "includeVars": true, "keepTime": true, "maxItems": 20, "query": "", "tags": []string{"sagasuite"}}},
	}}
}

// tour is the text panel: kept to what a newcomer does in the first ten
// minutes, with every link relative so it works behind any host name.
var tour = strings.TrimSpace(`
Three Go services, **orders**, **payments** and **inventory**, place an order through a choreographed **saga** over Kafka (transactional outbox, idempotent inbox, compensations, dead-letter queues), with one trace per order. Each stat below is one pattern; click it for its dashboard.

1. **Place an order:** ` + "`" + `curl -s localhost:8081/orders -H 'Content-Type: application/json' -d '{"customer_id":"c-1","items":[{"sku":"SKU-0001","quantity":1}],"payment":{"card_number":"4242424242424242"}}'` + "`" + `, or load it: ` + "`" + `docker compose --profile load up k6` + "`" + `.
2. **Follow it:** [Overview](/d/sagasuite-overview): a dot on *Saga latency* is an exemplar, click it for that order's trace; [Explore → Tempo](` + explore(Tempo, map[string]any{"queryType": "serviceMap"}) + `) draws the service graph; a span links to its logs and its CPU flame graph, or go straight to [orders' logs](` + logsOf("orders").url + `) and [orders' flame graph](` + profileOf("orders").url + `).
3. **Break something:** ` + "`" + `curl -s -X PUT localhost:8090/admin/faults -H 'Authorization: Bearer dev-admin-token' -H 'Content-Type: application/json' -d '{"latency_ms":0,"error_rate":1}'` + "`" + ` makes the payment provider fail: watch [Resilience](/d/sagasuite-resilience) (the breaker opens, orders are cancelled and their stock released), then send ` + "`" + `"error_rate":0` + "`" + ` to heal it. ` + "`" + `docs/resilience.md` + "`" + ` lists every fault.
4. **More:** the README's *A tour with curl* walks every pattern on the command line; the [API reference](http://localhost:8088/) (compose) documents every HTTP endpoint and event. **Under the hood:** [Kafka & outbox](/d/sagasuite-kafka), [Event sourcing & CQRS](/d/sagasuite-cqrs), [Coordination](/d/sagasuite-coordination) (leader election, discovery, sidecars), [Service RED](/d/sagasuite-red), [Go runtime & PostgreSQL](/d/sagasuite-runtime).
`)
