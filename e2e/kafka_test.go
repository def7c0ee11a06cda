package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// The same Kafka message delivered twice changes nothing: inventory does
// not reserve again and payments does not charge again.
func TestRedeliveredMessageChangesNothing(t *testing.T) {
	o := place(t, "c-dup", "SKU-0008", 2, "4242424242424242")
	if done := waitTerminal(t, o.OrderID); done.Status != "CONFIRMED" {
		t.Fatalf("order %+v", done)
	}
	eventually(t, "committed", func() error {
		if rs := reservationsOf(t, o.OrderID); len(rs) != 1 || rs[0].Status != "COMMITTED" {
			return fmt.Errorf("reservations %+v", rs)
		}
		return nil
	})
	stock := productOf(t, "SKU-0008")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The counters are the suite's: count from a quiet moment, once every
	// group has committed all it was sent (what an earlier test left
	// behind, a rebalance's redeliveries), so only the copies add to them.
	groups := []struct{ group, topic string }{{"inventory", "orders.events"}, {"payments", "orders.events"},
		{"payments", "inventory.events"}, {"orders", "inventory.events"}, {"orders", "payments.events"}, {"inventory", "payments.events"}}
	for _, g := range groups {
		waitConsumed(t, ctx, g.group, g.topic)
	}
	dupsBefore := metric(t, "orders", "inbox_duplicates_total") + metric(t, "payments", "inbox_duplicates_total") +
		metric(t, "inventory-1", "inbox_duplicates_total") + metric(t, "inventory-2", "inbox_duplicates_total")

	var copies []kafkago.Message
	for _, typ := range []string{"orders.placed"} {
		m := findMessage(t, ctx, "orders.events", o.OrderID, typ)
		copies = append(copies, kafkago.Message{Key: m.Key, Value: m.Value, Headers: m.Headers})
	}
	auth := findMessage(t, ctx, "payments.events", o.OrderID, "payments.authorized")
	commit := findMessage(t, ctx, "inventory.events", o.OrderID, "inventory.committed")
	w := writer("orders.events")
	defer w.Close()
	if err := w.WriteMessages(ctx, copies...); err != nil {
		t.Fatal(err)
	}
	pw := writer("payments.events")
	defer pw.Close()
	if err := pw.WriteMessages(ctx, kafkago.Message{Key: auth.Key, Value: auth.Value, Headers: auth.Headers}); err != nil {
		t.Fatal(err)
	}
	iw := writer("inventory.events")
	defer iw.Close()
	if err := iw.WriteMessages(ctx, kafkago.Message{Key: commit.Key, Value: commit.Value, Headers: commit.Headers}); err != nil {
		t.Fatal(err)
	}
	// Wait until every group has consumed past the copies.
	for _, g := range groups {
		waitConsumed(t, ctx, g.group, g.topic)
	}
	if rs := reservationsOf(t, o.OrderID); len(rs) != 1 || rs[0].Status != "COMMITTED" || rs[0].Quantity != 2 {
		t.Fatalf("reservations after redelivery %+v", rs)
	}
	// Each group skipped its copies and counted them: inventory and
	// payments the placed event, inventory the authorization, orders the
	// commit (it ignores authorizations, so records none).
	dups := metric(t, "orders", "inbox_duplicates_total") + metric(t, "payments", "inbox_duplicates_total") +
		metric(t, "inventory-1", "inbox_duplicates_total") + metric(t, "inventory-2", "inbox_duplicates_total")
	if dups-dupsBefore != 4 {
		t.Fatalf("inbox_duplicates_total grew by %v, want the 4 skipped copies", dups-dupsBefore)
	}
	if after := productOf(t, "SKU-0008"); after != stock {
		t.Fatalf("stock %+v -> %+v after redelivery", stock, after)
	}
	if ps := paymentsOf(t, o.OrderID); len(ps) != 1 || ps[0].Status != "AUTHORIZED" {
		t.Fatalf("payments after redelivery %+v", ps)
	}
	if again, _ := getOrder(o.OrderID); again.Version != 2 || again.Status != "CONFIRMED" {
		t.Fatalf("order after redelivery %+v", again)
	}
	// The inbox saw each copy and skipped it.
	placedID, authID, commitID := headers(kafkago.Message{Headers: copies[0].Headers})["ce_id"], headers(auth)["ce_id"], headers(commit)["ce_id"]
	eventually(t, "inbox skipped the copies", func() error {
		for _, want := range []struct{ service, id string }{{"inventory", placedID}, {"payments", placedID}, {"orders", commitID}, {"inventory", authID}} {
			if !skipped(want.service, want.id) {
				return fmt.Errorf("no span of %s shows the copy of %s skipped as a duplicate", want.service, want.id)
			}
		}
		return nil
	})
}

func skipped(service, id string) bool {
	for _, s := range suite.spans.All() {
		if s.Service == service && s.Attrs["messaging.message.id"] == id && strings.Contains(strings.Join(s.Events, ","), "duplicate message skipped") {
			return true
		}
	}
	return false
}

// Messages that can never be processed go to the topic's DLQ with the
// reason, and the consumers go on with the next message.
func TestMalformedMessagesGoToDLQAndConsumptionGoesOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	hdr := func(kv ...string) []kafkago.Header {
		var hs []kafkago.Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kafkago.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	marker := "poison-" + randHex(4)
	poison := []kafkago.Message{
		{Key: []byte(marker), Value: []byte(`{"order_id": `), Headers: hdr("ce_specversion", "1.0", "ce_id", marker+"-json", "ce_type", "orders.placed", "ce_source", "/orders", "ce_time", now)},
		{Key: []byte(marker), Value: []byte(`{"order_id":"x"}`), Headers: hdr("ce_specversion", "1.0", "ce_id", marker+"-type", "ce_type", "orders.teleported", "ce_source", "/orders", "ce_time", now)},
		{Key: []byte(marker), Value: []byte(`{"order_id":"x"}`), Headers: hdr("ce_type", "orders.placed")},
		// Any client of the broker asserting an orders event: refused
		// for its ce_source, whatever its data.
		{Key: []byte(marker), Value: []byte(`{"order_id":"forged"}`), Headers: hdr("ce_specversion", "1.0", "ce_id", marker+"-source", "ce_type", "orders.cancelled", "ce_source", "/e2e", "ce_time", now)},
	}
	w := writer("orders.events")
	defer w.Close()
	if err := w.WriteMessages(ctx, poison...); err != nil {
		t.Fatal(err)
	}
	// Both consumers of orders.events dead-letter each one and go on.
	reasons := map[string]int{}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: suite.brokers, Topic: "orders.events.dlq", GroupID: "e2e-dlq-" + marker,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second})
	defer r.Close()
	for len(reasons) < 2*len(poison) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("dlq after %d messages: %v", len(reasons), err)
		}
		if string(m.Key) != marker {
			continue
		}
		h := headers(m)
		if h["dlq_reason"] == "" || h["dlq_topic"] != "orders.events" {
			t.Fatalf("dlq message without reason: %v", h)
		}
		reasons[h["dlq_group"]+"|"+string(m.Value)+"|"+h["dlq_reason"]]++
	}
	forged := 0
	for k := range reasons {
		t.Log("dead-lettered:", k)
		if strings.Contains(k, `{"order_id":"forged"}`) && strings.Contains(k, `ce_source "/e2e"`) {
			forged++
		}
	}
	if forged != 2 {
		t.Errorf("the forged orders.cancelled was refused for its ce_source by %d groups, want inventory and payments", forged)
	}
	// And the next good order still goes through.
	o := place(t, "c-after-poison", "SKU-0009", 1, "4242424242424242")
	if done := waitTerminal(t, o.OrderID); done.Status != "CONFIRMED" {
		t.Fatalf("order after poison %+v", done)
	}
	waitConsumed(t, ctx, "inventory", "orders.events")
	waitConsumed(t, ctx, "payments", "orders.events")
}

func writer(topic string) *kafkago.Writer {
	return &kafkago.Writer{Addr: kafkago.TCP(suite.brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
}

func headers(m kafkago.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// findMessage scans every partition of topic for the event of type typ with key.
func findMessage(t *testing.T, ctx context.Context, topic, key, typ string) kafkago.Message {
	t.Helper()
	conn, err := kafkago.DialContext(ctx, "tcp", suite.brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		lc, err := kafkago.DialLeader(ctx, "tcp", suite.brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil || last == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: suite.brokers, Topic: topic, Partition: p.ID, MaxWait: 50 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			if string(m.Key) == key && headers(m)["ce_type"] == typ {
				r.Close()
				return m
			}
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	t.Fatalf("no %s for %s on %s", typ, key, topic)
	return kafkago.Message{}
}

// waitConsumed waits until group has committed every partition of topic up
// to its current end.
func waitConsumed(t *testing.T, ctx context.Context, group, topic string) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(suite.brokers...)}
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var parts []int
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	end := map[int]int64{}
	for _, p := range parts {
		lc, err := kafkago.DialLeader(ctx, "tcp", suite.brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		end[p], _ = lc.ReadLastOffset()
		lc.Close()
	}
	eventually(t, group+" consumed "+topic, func() error {
		resp, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err != nil {
			return err
		}
		var behind []string
		for _, p := range resp.Topics[topic] {
			if p.CommittedOffset < end[p.Partition] && end[p.Partition] > 0 {
				behind = append(behind, fmt.Sprintf("p%d at %d of %d", p.Partition, p.CommittedOffset, end[p.Partition]))
			}
		}
		if len(behind) > 0 {
			return fmt.Errorf("behind: %s", strings.Join(behind, ", "))
		}
		return nil
	})
}
