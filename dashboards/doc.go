// Package dashboards holds the suite's Grafana dashboards. The JSON files
// here are what Grafana loads (compose provisions this folder); they are
// generated from cmd/dashgen, which keeps every panel's query, unit,
// description and exemplar setting in one readable Go table:
//
//	go run ./dashboards/cmd/dashgen -out dashboards
//
// The tests here check that the committed JSON is what the generator
// writes; e2e checks that every query parses, names only exported metrics,
// and returns data from a real Prometheus scraping the running suite.
package dashboards
