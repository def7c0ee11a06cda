package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/example/sagasuite/platform/kafkatest"
)

// checkWire reads every message the run left on the saga's topics and
// checks each against api/asyncapi.yaml: its ce_type is a message of the
// topic's channel, its headers and its data validate against that
// message's schemas. TestMain runs it after the tests, when every kind of
// event has been produced (refunds, expiries, timeouts included). The
// suite's own poison messages (key poison-…, kafka_test.go) are skipped:
// they are meant to break the contract.
func checkWire(w io.Writer) bool {
	api, err := kafkatest.LoadAsyncAPI("../api/asyncapi.yaml")
	if err != nil {
		fmt.Fprintln(w, "e2e: wire check:", err)
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]int{}
	problems := map[string]int{}
	for _, topic := range []string{"orders.events", "inventory.events", "payments.events"} {
		allowed := api.Types(topic)
		err := eachMessage(ctx, topic, func(m kafkago.Message) {
			if strings.HasPrefix(string(m.Key), "poison-") {
				return
			}
			h := headers(m)
			typ := h["ce_type"]
			seen[typ]++
			switch {
			case !slices.Contains(allowed, typ):
				problems[fmt.Sprintf("%s: type %q is not a message of the channel (%v)", topic, typ, allowed)]++
			default:
				delete(h, "tracestate") // optional, and free-form
				if err := api.Validate(typ, h, m.Value); err != nil {
					problems[fmt.Sprintf("%s: %v", topic, oneLine(err))]++
				}
			}
		})
		if err != nil {
			problems["read "+topic+": "+err.Error()]++
		}
	}
	var all []string
	for _, topic := range []string{"orders.events", "inventory.events", "payments.events"} {
		all = append(all, api.Types(topic)...)
	}
	var unseen []string
	for _, typ := range all {
		if seen[typ] == 0 {
			unseen = append(unseen, typ)
		}
	}
	fmt.Fprintf(w, "e2e: %d events on the wire checked against api/asyncapi.yaml; types no test produced: %v\n", sum(seen), unseen)
	if len(problems) == 0 {
		return false
	}
	fmt.Fprintf(w, "e2e: %d kinds of event did not follow api/asyncapi.yaml:\n", len(problems))
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range problems {
			if !yield(p) {
				return
			}
		}
	}) {
		fmt.Fprintf(w, "  %s (%d times)\n", p, problems[p])
	}
	return true
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// eachMessage calls f with every message of every partition of topic, up
// to each partition's end when it was asked.
func eachMessage(ctx context.Context, topic string, f func(kafkago.Message)) error {
	conn, err := kafkago.DialContext(ctx, "tcp", suite.brokers[0])
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(topic)
	_ = conn.Close()
	if err != nil {
		return err
	}
	for _, p := range parts {
		lc, err := kafkago.DialLeader(ctx, "tcp", suite.brokers[0], topic, p.ID)
		if err != nil {
			return err
		}
		first, last, err := lc.ReadOffsets()
		_ = lc.Close()
		if err != nil {
			return err
		}
		if last <= first {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: suite.brokers, Topic: topic, Partition: p.ID, MaxWait: 50 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			_ = r.Close()
			return err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				return fmt.Errorf("%s/%d: %w", topic, p.ID, err)
			}
			f(m)
			if m.Offset+1 >= last {
				break
			}
		}
		_ = r.Close()
	}
	return nil
}
