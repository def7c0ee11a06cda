package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"sigs.k8s.io/yaml"
)

// One order, one trace: the client's trace context goes in with POST
// /orders and every hop, through the outbox and Kafka, is a child of the
// one before, in all three services.
func TestOneTracePerOrderAcrossServices(t *testing.T) {
	traceID, clientSpan := randHex(16), randHex(8)
	status, body, err := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-trace", "SKU-0006", 1, "4242424242424242"),
		map[string]string{"traceparent": "00-" + traceID + "-" + clientSpan + "-01"})
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("POST: %d %s %v", status, body, err)
	}
	var o orderView
	_ = json.Unmarshal(body, &o)
	if done := waitTerminal(t, o.OrderID); done.Status != "CONFIRMED" {
		t.Fatalf("order %+v", done)
	}

	// The hops: each span is a child of the one that caused it.
	var spans []span
	eventually(t, "the whole causal chain exported", func() error {
		spans = suite.spans.Trace(traceID)
		need := func(parent, service, name, group string) (span, error) {
			s, ok := child(spans, parent, service, name)
			if !ok {
				return s, fmt.Errorf("no %q span of %s with parent %s (trace has %d spans: %s)", name, service, parent, len(spans), names(spans))
			}
			if group != "" && s.Attrs["messaging.consumer.group.name"] != group {
				return s, fmt.Errorf("%q: consumer group %q, want %s", name, s.Attrs["messaging.consumer.group.name"], group)
			}
			return s, nil
		}
		post, err := need(clientSpan, "orders", "POST /orders", "")
		if err != nil {
			return err
		}
		placed, err := need(post.SpanID, "orders", "send orders.events", "") // through the outbox
		if err != nil {
			return err
		}
		invPlaced, err := need(placed.SpanID, "inventory", "process orders.events", "inventory")
		if err != nil {
			return err
		}
		payPlaced, err := need(placed.SpanID, "payments", "process orders.events", "payments")
		if err != nil {
			return err
		}
		reserved, err := need(invPlaced.SpanID, "inventory", "send inventory.events", "")
		if err != nil {
			return err
		}
		payReserved, err := need(reserved.SpanID, "payments", "process inventory.events", "payments")
		if err != nil {
			return err
		}
		// Payments charges on whichever of the two facts arrived last.
		authorized, err := need(payReserved.SpanID, "payments", "send payments.events", "")
		if err != nil {
			if authorized, err = need(payPlaced.SpanID, "payments", "send payments.events", ""); err != nil {
				return err
			}
		}
		invAuthorized, err := need(authorized.SpanID, "inventory", "process payments.events", "inventory")
		if err != nil {
			return err
		}
		// Inventory commits the stock; its commit confirms the order.
		committed, err := need(invAuthorized.SpanID, "inventory", "send inventory.events", "")
		if err != nil {
			return err
		}
		ordCommitted, err := need(committed.SpanID, "orders", "process inventory.events", "orders")
		if err != nil {
			return err
		}
		confirmed, err := need(ordCommitted.SpanID, "orders", "send orders.events", "")
		if err != nil {
			return err
		}
		_, err = need(confirmed.SpanID, "inventory", "process orders.events", "inventory")
		return err
	})

	// Messaging spans follow the conventions and name this order's events.
	for _, s := range spans {
		if !strings.HasPrefix(s.Name, "send ") && !strings.HasPrefix(s.Name, "process ") {
			continue
		}
		wantKind, op := tracepb.Span_SPAN_KIND_PRODUCER, "send"
		if strings.HasPrefix(s.Name, "process ") {
			wantKind, op = tracepb.Span_SPAN_KIND_CONSUMER, "process"
		}
		dest := strings.SplitN(s.Name, " ", 2)[1]
		if s.Kind != wantKind || s.Attrs["messaging.system"] != "kafka" || s.Attrs["messaging.operation.type"] != op ||
			s.Attrs["messaging.destination.name"] != dest || s.Attrs["messaging.message.id"] == "" ||
			s.Attrs["messaging.kafka.message.key"] != o.OrderID {
			t.Errorf("span %q of %s: kind %v attrs %v", s.Name, s.Service, s.Kind, s.Attrs)
		}
	}
	// Database work shows in the same trace: the reservation's stock
	// update, sent in a batch with the commit (one span per round trip,
	// its statements in db.query.text).
	stock := false
	for _, s := range spans {
		stock = stock || s.Service == "inventory" && strings.HasPrefix(s.Name, "BATCH ") &&
			strings.Contains(s.Attrs["db.query.text"], "UPDATE products")
	}
	if !stock {
		t.Errorf("no database span of inventory's stock update in the trace: %s", names(spans))
	}
}

// No span anywhere carries a full card number.
func TestCardNumbersNeverReachSpans(t *testing.T) {
	cards := []string{"4242424242424242", "4000000000000002", "4000000000009995"}
	for _, card := range cards[1:] {
		o := place(t, "c-leak", "SKU-0007", 1, card)
		waitTerminal(t, o.OrderID)
	}
	time.Sleep(200 * time.Millisecond) // let the batch processors export
	all := suite.spans.All()
	if len(all) < 50 {
		t.Fatalf("only %d spans received: the check would prove nothing", len(all))
	}
	for _, s := range all {
		for _, card := range cards {
			if strings.Contains(s.Raw, card) {
				t.Fatalf("span %q of %s carries a card number: %s", s.Name, s.Service, s.Raw)
			}
		}
	}
	for _, l := range suite.spans.Logs() {
		for _, card := range cards {
			if strings.Contains(l.Raw, card) {
				t.Fatalf("a log record of %s exported over OTLP carries a card number: %s", l.Service, l.Raw)
			}
		}
	}
	for _, p := range suite.procs {
		if b, err := readFile(p.log); err == nil {
			for _, card := range cards {
				if strings.Contains(b, card) {
					t.Fatalf("log of %s carries a card number", p.name)
				}
			}
		}
	}
}

func child(spans []span, parent, service, name string) (span, bool) {
	for _, s := range spans {
		if s.ParentID == parent && s.Service == service && s.Name == name {
			return s, true
		}
	}
	return span{}, false
}

func names(spans []span) string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Service+":"+s.Name)
	}
	return strings.Join(out, ", ")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// Logs go out over OTLP too, and the lines written while handling an
// order carry its trace and span ids: from a trace, its logs are found
// in every service it crossed.
func TestLogsExportedWithTheOrdersTrace(t *testing.T) {
	o := place(t, "c-logs", "SKU-0009", 1, "4242424242424242")
	waitTerminal(t, o.OrderID)
	var events []struct {
		Metadata map[string]string `json:"metadata"`
	}
	getJSON(t, suite.urls["orders"]+"/orders/"+o.OrderID+"/events", &events)
	traceID := ""
	if len(events) > 0 {
		if tp := strings.Split(events[0].Metadata["traceparent"], "-"); len(tp) == 4 {
			traceID = tp[1]
		}
	}
	if traceID == "" {
		t.Fatalf("no trace id in the order's events: %+v", events)
	}
	eventually(t, "logs of the order's trace from inventory, payments and orders", func() error {
		services := map[string]bool{}
		for _, l := range suite.spans.Logs() {
			if l.TraceID == traceID && len(l.SpanID) == 16 {
				services[l.Service] = true
			}
		}
		for _, svc := range []string{"inventory", "payments", "orders"} {
			if !services[svc] {
				return fmt.Errorf("no OTLP log of %s in trace %s (got %v)", svc, traceID, services)
			}
		}
		return nil
	})
}

// Tempo's metrics generator draws the service graph from client/server
// and producer/consumer span pairs; a client span without a pair becomes an
// edge to a virtual node named by the first of its peer_attributes the span
// carries (deploy/compose/tempo.yaml). A real order's trace must carry
// them: each service's database spans name PostgreSQL as one node and mark
// themselves as database calls (db.namespace, db.name or db.system: what
// Tempo matches), and Kafka producer spans name the messaging system. Before,
// the database spans carried only db.system.name, which Tempo's generator
// does not match, and the graph had no PostgreSQL.
func TestServiceGraphAttributesAreOnTheSpans(t *testing.T) {
	raw, err := os.ReadFile("../deploy/compose/tempo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		MetricsGenerator struct {
			Processor struct {
				ServiceGraphs struct {
					PeerAttributes         []string `json:"peer_attributes"`
					EnableVirtualNodeLabel bool     `json:"enable_virtual_node_label"`
				} `json:"service_graphs"`
			} `json:"processor"`
		} `json:"metrics_generator"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	sg := cfg.MetricsGenerator.Processor.ServiceGraphs
	if len(sg.PeerAttributes) == 0 || !sg.EnableVirtualNodeLabel {
		t.Fatalf("tempo.yaml: service_graphs %+v, want peer_attributes and virtual node labels", sg)
	}
	peer := func(s span) string { // what Tempo names the virtual node after
		for _, a := range sg.PeerAttributes {
			if v, ok := s.Attrs[a]; ok {
				return v
			}
		}
		return ""
	}

	traceID, clientSpan := randHex(16), randHex(8)
	status, body, err := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-graph", "SKU-0063", 1, "4242424242424242"),
		map[string]string{"traceparent": "00-" + traceID + "-" + clientSpan + "-01"})
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("POST: %d %s %v", status, body, err)
	}
	var o orderView
	_ = json.Unmarshal(body, &o)
	waitTerminal(t, o.OrderID)
	eventually(t, "database and Kafka spans the service graph can draw", func() error {
		db := map[string]bool{}
		kafka := false
		for _, s := range suite.spans.Trace(traceID) {
			switch {
			case s.Kind == tracepb.Span_SPAN_KIND_CLIENT && s.Attrs["db.system.name"] == "postgresql":
				_, ns := s.Attrs["db.namespace"]
				_, name := s.Attrs["db.name"]
				_, sys := s.Attrs["db.system"]
				if peer(s) == "postgresql" && (ns || name || sys) {
					db[s.Service] = true
				}
			case s.Kind == tracepb.Span_SPAN_KIND_PRODUCER:
				kafka = kafka || peer(s) == "kafka"
			}
		}
		for _, svc := range []string{"orders", "inventory", "payments"} {
			if !db[svc] {
				return fmt.Errorf("no database span of %s that Tempo would draw as the postgresql node (seen: %v)", svc, db)
			}
		}
		if !kafka {
			return errors.New("no producer span Tempo would name kafka")
		}
		return nil
	})
}
